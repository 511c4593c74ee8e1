package admission

import (
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
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
// one JSON object) is a *[ReviewError].
func DecodeReview(data []byte) (*admissionv1.AdmissionReview, error) {
	if len(data) > MaxReviewBody {
		return nil, &ReviewError{Msg: fmt.Sprintf("the AdmissionReview is %d bytes, more than the %d allowed", len(data), MaxReviewBody)}
	}
	// Field names are case-sensitive, as kube-apiserver writes them.
	// Anything after the one JSON value is an error.
	var review admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &review); err != nil {
		return nil, &ReviewError{Msg: "the body is not one AdmissionReview (admission.k8s.io/v1) in JSON", Err: err}
	}
	if review.APIVersion != ReviewAPIVersion || review.Kind != ReviewKind {
		return nil, &ReviewError{Msg: fmt.Sprintf("the body is apiVersion %q kind %q, not %s %s: set admissionReviewVersions: [v1] in the webhook configuration",
			review.APIVersion, review.Kind, ReviewAPIVersion, ReviewKind)}
	}
	if review.Request == nil {
		return nil, &ReviewError{Msg: "the AdmissionReview has no request"}
	}
	if review.Request.UID == "" {
		return nil, &ReviewError{Msg: "the AdmissionReview request has no uid"}
	}
	return &review, nil
}

// answer returns the AdmissionReview that answers review: its apiVersion
// and kind, and a response for the request's uid.
func answer(review *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	return &admissionv1.AdmissionReview{
		TypeMeta: review.TypeMeta,
		Response: &admissionv1.AdmissionResponse{UID: review.Request.UID},
	}
}
