package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward/keyward/internal/bounded"
)

// Webhook answers admission reviews and Gatekeeper provider requests by
// verifying images with Verifier.
type Webhook struct {
	// Verifier verifies one image. Required.
	Verifier Verifier
	// Log receives one audit line per decision per image; nil discards.
	Log *slog.Logger
	// Timeout bounds one request (the server's timeouts.request); a
	// webhook request also ends before the timeout the apiserver sends.
	// Zero means no bound but the apiserver's.
	Timeout time.Duration
	// Concurrency is how many images of a request are verified at once
	// (default DefaultConcurrency).
	Concurrency int
}

// PatchOp is one operation of a JSON Patch (RFC 6902 section 4.3,
// "replace").
type PatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value"`
}

func (h *Webhook) log() *slog.Logger {
	if h.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Log
}

// Validate answers a validating admission review: allowed when every
// image of the object verifies (warnings for the checks logged), denied
// with every failure otherwise.
func (h *Webhook) Validate(ctx context.Context, review *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	out := answer(review)
	resp := out.Response
	req := review.Request
	if !Judged(req) {
		resp.Allowed = true
		return out
	}
	_, ds, err := h.judge(ctx, req, "validate")
	if err != nil {
		deny(resp, clip(fmt.Sprintf("keyward: cannot read the %s: %v", req.Kind.Kind, err), maxMessageRunes))
		return out
	}
	if problems, warnings := summarize(ds); len(problems) > 0 {
		deny(resp, denial(problems))
	} else {
		resp.Allowed = true
		resp.Warnings = warningList(warnings)
	}
	return out
}

// Mutate answers a mutating admission review: every image must verify,
// as in Validate (denied otherwise, so that nothing unverified is
// pinned); each verified image that names no digest, new or changed by
// this request, is pinned to the digest verified with a JSON Patch that
// keeps the image as written and appends @digest. Images that already
// name a digest, or are skipped by the trust policy, are left as they
// are, so a second call patches nothing.
func (h *Webhook) Mutate(ctx context.Context, review *admissionv1.AdmissionReview) *admissionv1.AdmissionReview {
	out := answer(review)
	resp := out.Response
	req := review.Request
	if !Judged(req) {
		resp.Allowed = true
		return out
	}
	_, ds, err := h.judge(ctx, req, "mutate")
	if err != nil {
		deny(resp, clip(fmt.Sprintf("keyward: cannot read the %s: %v", req.Kind.Kind, err), maxMessageRunes))
		return out
	}
	problems, warnings := summarize(ds)
	if len(problems) > 0 {
		deny(resp, denial(problems))
		return out
	}
	var ops []PatchOp
	for _, d := range ds {
		switch {
		case d.ref.Digest != "" || d.res.Skipped:
			continue
		case req.SubResource == "ephemeralcontainers" && d.img.Kind != KindEphemeralContainer:
			continue // the subresource changes ephemeral containers only
		case d.res.Artifact == nil || d.res.Artifact.Digest == "":
			deny(resp, denial([]string{describe(d.img) + ": verified without a digest to pin (internal error)"}))
			return out
		}
		ops = append(ops, PatchOp{Op: "replace", Path: d.img.Path, Value: d.img.Image + "@" + d.res.Artifact.Digest.String()})
	}
	resp.Allowed = true
	resp.Warnings = warningList(warnings)
	if len(ops) > 0 {
		patch, err := json.Marshal(ops)
		if err != nil {
			deny(resp, "keyward: cannot encode the patch: "+err.Error())
			return out
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = patch, &pt
	}
	return out
}

// judge extracts and verifies the images of req, and writes the audit
// lines.
func (h *Webhook) judge(ctx context.Context, req *admissionv1.AdmissionRequest, webhook string) (*Workload, []*decision, error) {
	w, err := Extract(req)
	if err != nil {
		h.log().Warn("admission request refused", "webhook", webhook, "uid", string(req.UID), "kind", req.Kind.Kind,
			"namespace", req.Namespace, "name", req.Name, "error", err.Error())
		return nil, nil, err
	}
	unchanged(req, w)
	ds := decide(ctx, h.Verifier, h.Concurrency, w)
	dryRun := req.DryRun != nil && *req.DryRun
	log := h.log()
	if !log.Enabled(ctx, slog.LevelInfo) {
		return w, ds, nil
	}
	// Typed attributes, built once in an array of their own: the line is
	// written on every decision, within the request's time.
	attrs := make([]slog.Attr, 0, 15)
	for _, d := range ds {
		attrs = append(attrs[:0], slog.String("webhook", webhook), slog.String("image", d.img.Image), slog.String("digest", d.digest()),
			slog.String("namespace", w.Namespace), slog.String("kind", w.Kind), slog.String("name", w.Name),
			slog.String("container", d.img.Container), slog.String("containerKind", string(d.img.Kind)), slog.String("statement", statement(d)),
			slog.String("verdict", d.verdict()), slog.Bool("dryRun", dryRun), slog.String("uid", string(req.UID)))
		if d.problem != "" {
			attrs = append(attrs, slog.String("reason", d.problem))
		}
		if len(d.logged) > 0 {
			attrs = append(attrs, slog.Any("warnings", d.logged))
		}
		log.LogAttrs(ctx, slog.LevelInfo, "admission decision", attrs...)
	}
	return w, ds, nil
}

// unchanged drops from w, on UPDATE, the images the request leaves as
// they were (the same image at the same path of the old object): they
// were admitted before, they do not change what runs, and judging them
// again would let a registry outage, or a signature expired since,
// block the metadata updates that controllers, finalizers and garbage
// collection make to running workloads. Nor are they pinned: a changed
// image field restarts a Pod's container and rolls out a Deployment. An
// old object that cannot be read leaves every image to be judged.
func unchanged(req *admissionv1.AdmissionRequest, w *Workload) {
	if req.Operation != admissionv1.Update || len(req.OldObject.Raw) == 0 {
		return
	}
	ow, err := extract(req, req.OldObject.Raw)
	if err != nil {
		return
	}
	old := make(map[string]string, len(ow.Images))
	for _, img := range ow.Images {
		old[img.Path] = img.Image
	}
	kept := w.Images[:0]
	for _, img := range w.Images {
		if prev, ok := old[img.Path]; !ok || prev != img.Image {
			kept = append(kept, img)
		}
	}
	w.Images = kept
}

func statement(d *decision) string {
	if d.res == nil {
		return ""
	}
	return d.res.Statement
}

func summarize(ds []*decision) (problems, warnings []string) {
	for _, d := range ds {
		if d.problem != "" {
			problems = append(problems, d.problem)
		}
		warnings = append(warnings, d.warnings...)
	}
	return problems, warnings
}

func deny(resp *admissionv1.AdmissionResponse, msg string) {
	resp.Allowed = false
	resp.Patch, resp.PatchType, resp.Warnings = nil, nil, nil
	resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg}
}

// ServeValidate serves the validating webhook: POST an AdmissionReview
// v1, get one back.
func (h *Webhook) ServeValidate(w http.ResponseWriter, r *http.Request) {
	h.serveReview(w, r, h.Validate)
}

// ServeMutate serves the mutating webhook.
func (h *Webhook) ServeMutate(w http.ResponseWriter, r *http.Request) { h.serveReview(w, r, h.Mutate) }

func (h *Webhook) serveReview(w http.ResponseWriter, r *http.Request, judge func(context.Context, *admissionv1.AdmissionReview) *admissionv1.AdmissionReview) {
	// The deadline starts now: reading the body counts.
	limit := h.Timeout
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	ctx, cancel := context.WithTimeout(r.Context(), budget(r.URL.Query().Get("timeout"), limit))
	defer cancel()
	data, ok := readBody(w, r, MaxReviewBody, "the AdmissionReview")
	if !ok {
		return
	}
	review, err := DecodeReview(data)
	if err != nil {
		writeError(w, http.StatusBadRequest, "keyward: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, judge(ctx, review))
}

// readBody reads a request body of at most limit bytes, or answers the
// request with why it cannot.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, bool) {
	data, err := bounded.ReadAll(http.MaxBytesReader(w, r.Body, limit+1), limit, what)
	var tle *bounded.TooLargeError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &tle) || errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("keyward: %s is larger than the %d bytes allowed", what, limit))
		return nil, false
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("keyward: cannot read %s: %v", what, err))
		return nil, false
	}
	return data, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}
