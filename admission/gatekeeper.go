package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// The Gatekeeper external-data API (github.com/open-policy-agent/frameworks
// constraint/pkg/externaldata, request.go and response.go): Gatekeeper
// POSTs a ProviderRequest and reads a ProviderResponse.
const (
	// ProviderAPIVersion is the apiVersion Gatekeeper sends
	// (externaldata.NewProviderRequest); ProviderAPIVersionAlpha is the
	// earlier one, which Ratify answers with.
	ProviderAPIVersion      = "externaldata.gatekeeper.sh/v1beta1"
	ProviderAPIVersionAlpha = "externaldata.gatekeeper.sh/v1alpha1"
	// ProviderRequestKind and ProviderResponseKind are the kinds.
	ProviderRequestKind  = "ProviderRequest"
	ProviderResponseKind = "ProviderResponse"
	// MaxProviderBody bounds a ProviderRequest; MaxKeys its keys.
	MaxProviderBody = 1 << 20
	MaxKeys         = 1000
)

// ProviderRequest is the body Gatekeeper sends: the keys are images, each
// optionally prefixed by [namespace] (Ratify's key form, which its
// multi-tenancy constraint template sends) to select that namespace's
// policy set.
type ProviderRequest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Request    struct {
		Keys []string `json:"keys"`
	} `json:"request"`
}

// ProviderResponse is the answer: one item per distinct key, in the
// order of the keys.
type ProviderResponse struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Response   ProviderResult `json:"response"`
}

// ProviderResult holds the items, or the system error of a request that
// could not be answered at all.
type ProviderResult struct {
	// Idempotent: the same keys get the same answers (Gatekeeper requires
	// it of mutation providers only).
	Idempotent  bool           `json:"idempotent"`
	Items       []ProviderItem `json:"items"`
	SystemError string         `json:"systemError,omitempty"`
}

// ProviderItem is the verdict on one key. keyward always answers with a
// Value and never with an Error: Gatekeeper gives a rego policy either an
// item's value (in responses) or its error (in errors), never both
// (externaldata.NewRegoResponse), and the constraint templates written for
// Ratify read value.isSuccess, some of them nothing else. An image that
// does not verify, for whatever reason, is a value with isSuccess false.
type ProviderItem struct {
	Key   string           `json:"key"`
	Value *ProviderVerdict `json:"value,omitempty"`
	Error string           `json:"error,omitempty"`
}

// ProviderVerdict is the value of an item: the keyward verification result
// (verify-result.schema.json: verified, error, signatures, ...) and the
// fields Ratify v1.4.0's verification response has that its constraint
// templates read (isSuccess, verifierReports with type notation and
// extensions.Issuer).
type ProviderVerdict struct {
	*verify.ReferenceResult
	// IsSuccess is Verified.
	IsSuccess bool `json:"isSuccess"`
	// Timestamp is when the verdict was given (RFC 3339).
	Timestamp string `json:"timestamp"`
	// VerifierReports describe each signature evaluated.
	VerifierReports []VerifierReport `json:"verifierReports"`
}

// VerifierReport is one signature's verdict, in the shape of a Ratify
// notation verifier report.
type VerifierReport struct {
	Subject         string            `json:"subject"`
	IsSuccess       bool              `json:"isSuccess"`
	Name            string            `json:"name"`
	Type            string            `json:"type"`
	VerifierName    string            `json:"verifierName"`
	VerifierType    string            `json:"verifierType"`
	ReferenceDigest string            `json:"referenceDigest,omitempty"`
	ArtifactType    string            `json:"artifactType"`
	Message         string            `json:"message"`
	Extensions      map[string]string `json:"extensions,omitempty"`
}

// DecodeProviderRequest decodes a ProviderRequest of either apiVersion;
// anything else is a *[ProviderRequestError].
func DecodeProviderRequest(data []byte) (*ProviderRequest, error) {
	var pr ProviderRequest
	if err := json.Unmarshal(data, &pr); err != nil {
		return nil, &ProviderRequestError{Msg: "the body is not a Gatekeeper ProviderRequest in JSON", Err: err}
	}
	if (pr.APIVersion != ProviderAPIVersion && pr.APIVersion != ProviderAPIVersionAlpha) || pr.Kind != ProviderRequestKind {
		return nil, &ProviderRequestError{Msg: fmt.Sprintf("the body is apiVersion %q kind %q, not %s (or v1alpha1) %s", pr.APIVersion, pr.Kind, ProviderAPIVersion, ProviderRequestKind)}
	}
	if n := len(pr.Request.Keys); n > MaxKeys {
		return nil, &ProviderRequestError{Msg: fmt.Sprintf("the request has %d keys, more than the %d allowed", n, MaxKeys)}
	}
	return &pr, nil
}

// providerKey is a key read: its namespace and image.
type providerKey struct {
	namespace, image string
	ref              reference.Reference
	err              error
}

func parseKey(key string) providerKey {
	k := providerKey{image: key}
	if rest, ok := strings.CutPrefix(key, "["); ok {
		ns, image, ok := strings.Cut(rest, "]")
		if !ok {
			k.err = fmt.Errorf("key %q opens a [namespace] prefix that does not close", key)
			return k
		}
		k.namespace, k.image = ns, image
	}
	k.ref, k.err = reference.ParseImage(k.image)
	return k
}

// Provide answers a ProviderRequest: each distinct key is verified once,
// and every key gets a verdict, in the order of the keys.
func (h *Webhook) Provide(ctx context.Context, pr *ProviderRequest) *ProviderResponse {
	out := &ProviderResponse{APIVersion: pr.APIVersion, Kind: ProviderResponseKind, Response: ProviderResult{Idempotent: true, Items: []ProviderItem{}}}
	var keys []string
	parsed := map[string]providerKey{}
	var reqs []ImageRequest
	for _, key := range pr.Request.Keys {
		if _, dup := parsed[key]; dup {
			continue
		}
		k := parseKey(key)
		parsed[key] = k
		keys = append(keys, key)
		if k.err == nil {
			reqs = append(reqs, ImageRequest{Namespace: k.namespace, Reference: k.ref.Raw})
		}
	}
	results := verifyAll(ctx, h.Verifier, reqs, h.Concurrency)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for _, key := range keys {
		k := parsed[key]
		var res *verify.ReferenceResult
		if k.err != nil {
			res = failed(k.image, verify.ErrorResolve, k.err.Error())
		} else {
			res = results[requestKey(k.namespace, k.ref.Raw)]
		}
		v := verdict(res, now)
		out.Response.Items = append(out.Response.Items, ProviderItem{Key: key, Value: v})
		verdictWord := "allowed"
		switch {
		case !v.IsSuccess:
			verdictWord = "denied"
		case res.Skipped:
			verdictWord = "skipped"
		case len(Warnings(res)) > 0:
			verdictWord = "warned"
		}
		digest := ""
		if res.Artifact != nil {
			digest = res.Artifact.Digest.String()
		}
		attrs := []slog.Attr{slog.String("image", k.image), slog.String("digest", digest), slog.String("namespace", k.namespace),
			slog.String("statement", res.Statement), slog.String("verdict", verdictWord)}
		if !v.IsSuccess {
			attrs = append(attrs, slog.String("reason", Failure(res)))
		}
		h.log().LogAttrs(ctx, slog.LevelInfo, "gatekeeper decision", attrs...)
	}
	return out
}

// verdict is the value of an item for res.
func verdict(res *verify.ReferenceResult, now string) *ProviderVerdict {
	v := &ProviderVerdict{ReferenceResult: res, IsSuccess: res.Verified && res.Error == nil, Timestamp: now, VerifierReports: []VerifierReport{}}
	subject := res.Reference
	if res.Artifact != nil {
		subject = res.Scope + "@" + res.Artifact.Digest.String()
	}
	for _, s := range res.Signatures {
		r := VerifierReport{Subject: subject, IsSuccess: s.Passed, Name: "notation", Type: "notation", VerifierName: "notation", VerifierType: "notation",
			ReferenceDigest: s.Signature, ArtifactType: notarySignatureType, Message: "signature verification success"}
		if !s.Passed {
			r.Message = string(s.FailedCheck) + " check failed"
			if c := s.Check(s.FailedCheck); c != nil && c.Message != "" {
				r.Message += ": " + firstLine(c.Message)
			}
		}
		if s.Signer != nil {
			r.Extensions = map[string]string{"Issuer": s.Signer.Issuer, "SN": s.Signer.Subject}
		}
		v.VerifierReports = append(v.VerifierReports, r)
	}
	return v
}

// notarySignatureType is the artifact type of a Notary Project signature
// manifest (notaryproject specification, signature-specification.md).
const notarySignatureType = "application/vnd.cncf.notary.signature"

// ServeGatekeeper serves the Gatekeeper external-data provider: POST a
// ProviderRequest, get a ProviderResponse back. A request that cannot be
// read is answered 400 with a ProviderResponse whose systemError says why
// (Gatekeeper denies on a system error).
func (h *Webhook) ServeGatekeeper(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if h.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.Timeout)
		defer cancel()
	}
	data, ok := readBody(w, r, MaxProviderBody, "the ProviderRequest")
	if !ok {
		return
	}
	pr, err := DecodeProviderRequest(data)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, &ProviderResponse{APIVersion: ProviderAPIVersion, Kind: ProviderResponseKind,
			Response: ProviderResult{Idempotent: true, Items: []ProviderItem{}, SystemError: "keyward: " + err.Error()}})
		return
	}
	writeJSON(w, http.StatusOK, h.Provide(ctx, pr))
}
