package admission

import (
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kjson "sigs.k8s.io/json"
)

// The AdmissionReview keyward answers: admission.k8s.io/v1 only (the
// webhook configurations list admissionReviewVersions: [v1]; v1beta1 was
// removed from the webhook configuration API in Kubernetes 1.22).
const (
	// ReviewAPIVersion is the apiVersion of the AdmissionReview read and
	// answered.
	ReviewAPIVersion = "admission.k8s.io/v1"
	// ReviewKind is its kind.
	ReviewKind = "AdmissionReview"
)

// MaxReviewBody bounds the body of one AdmissionReview: the object and,
// on UPDATE, the old object, each at most the 3 MiB kube-apiserver accepts
// in a request body (k8s.io/apiserver, MaxRequestBodyBytes), with room for
// the rest.
const MaxReviewBody = 8 << 20

// DecodeReview decodes one AdmissionReview v1 request; anything else (a
// v1beta1 review, a review without a request or uid, a body that is not
// one JSON object) is a *[ReviewError]. The request holds the fields
// keyward reads (uid, kind, subResource, name, namespace, operation,
// object, oldObject, dryRun); the others (userInfo, resource, options,
// ...) are left empty.
func DecodeReview(data []byte) (*admissionv1.AdmissionReview, error) {
	if len(data) > MaxReviewBody {
		return nil, &ReviewError{Msg: fmt.Sprintf("the AdmissionReview is %d bytes, more than the %d allowed", len(data), MaxReviewBody)}
	}
	// Field names are case-sensitive, as kube-apiserver writes them.
	// Anything after the one JSON value is an error.
	var in reviewIn
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &in); err != nil {
		return nil, &ReviewError{Msg: "the body is not one AdmissionReview (admission.k8s.io/v1) in JSON", Err: err}
	}
	if in.APIVersion != ReviewAPIVersion || in.Kind != ReviewKind {
		return nil, &ReviewError{Msg: fmt.Sprintf("the body is apiVersion %q kind %q, not %s %s: set admissionReviewVersions: [v1] in the webhook configuration",
			in.APIVersion, in.Kind, ReviewAPIVersion, ReviewKind)}
	}
	if in.Request == nil {
		return nil, &ReviewError{Msg: "the AdmissionReview has no request"}
	}
	if in.Request.UID == "" {
		return nil, &ReviewError{Msg: "the AdmissionReview request has no uid"}
	}
	r := in.Request
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: in.APIVersion, Kind: in.Kind},
		Request: &admissionv1.AdmissionRequest{UID: r.UID, Kind: r.Kind, SubResource: r.SubResource, Name: r.Name, Namespace: r.Namespace,
			Operation: r.Operation, Object: r.Object, OldObject: r.OldObject, DryRun: r.DryRun},
	}, nil
}

// reviewIn is what DecodeReview reads of an AdmissionReview
// (k8s.io/api admission/v1, under the same JSON names). The decoder skips
// the fields of the request keyward does not read (userInfo, resource,
// requestKind, options, ...) without building them: with the object's
// second reading (Extract), decoding the whole AdmissionRequest was most
// of the time of a warm admission request. The fields read keep their
// JSON types.
type reviewIn struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Request    *requestIn `json:"request"`
}

// requestIn is what DecodeReview reads of an AdmissionRequest.
type requestIn struct {
	UID         types.UID               `json:"uid"`
	Kind        metav1.GroupVersionKind `json:"kind"`
	SubResource string                  `json:"subResource"`
	Name        string                  `json:"name"`
	Namespace   string                  `json:"namespace"`
	Operation   admissionv1.Operation   `json:"operation"`
	Object      runtime.RawExtension    `json:"object"`
	OldObject   runtime.RawExtension    `json:"oldObject"`
	DryRun      *bool                   `json:"dryRun"`
}

// answer returns the AdmissionReview that answers review: its apiVersion
// and kind, and a response for the request's uid.
func answer(review *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	return &admissionv1.AdmissionReview{
		TypeMeta: review.TypeMeta,
		Response: &admissionv1.AdmissionResponse{UID: review.Request.UID},
	}
}
