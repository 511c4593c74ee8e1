package admission

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// ImageRequest is one image to verify on behalf of a namespace.
type ImageRequest struct {
	// Namespace selects the policy set; "" is the default one.
	Namespace string
	// Reference is the full reference ([reference.ParseImage]'s Raw).
	Reference string
	// PullSecrets are the names of the pod's imagePullSecrets in
	// Namespace.
	PullSecrets []string
}

// Verifier verifies one image. It never returns nil; whatever fails is in
// the result's Error with Verified false. An image under a skip statement
// must come back Skipped without a registry request.
type Verifier interface {
	VerifyImage(ctx context.Context, r ImageRequest) *verify.ReferenceResult
}

// DefaultConcurrency is how many distinct images of one request are
// verified at once.
const DefaultConcurrency = 16

// Bounds of what a response says, so that kube-apiserver passes it on
// whole (k8s.io/api admission/v1 AdmissionResponse.Warnings: "Limit
// warnings to 120 characters if possible. Warnings over 256 characters
// and large numbers of warnings may be truncated"; k8s.io/apiserver
// endpoints/filters/warning.go truncates each to 256 runes once all pass
// 4096). A warning names the check, the image and the statement, which
// with a long image takes more than 120 characters; the check's message
// is in the audit log.
const (
	maxWarningRunes  = 250
	maxWarnings      = 20
	maxProblemRunes  = 480
	maxProblems      = 8
	maxMessageRunes  = 4000
	maxSignatureText = 3
)

// requestKey is what distinguishes two requests: the same reference may
// be judged by two namespaces' policy sets.
func requestKey(namespace, ref string) string { return namespace + "\x00" + ref }

// verifyAll verifies each distinct request once, at most concurrency at a
// time, and returns the results by requestKey. Results not in by the
// context's deadline are failures: the caller answers in time, and
// denies.
func verifyAll(ctx context.Context, v Verifier, reqs []ImageRequest, concurrency int) map[string]*verify.ReferenceResult {
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	type done struct {
		key string
		res *verify.ReferenceResult
	}
	out := make(map[string]*verify.ReferenceResult, len(reqs))
	refs := make(map[string]string, len(reqs))
	// Buffered for every request: a verification that ends after the
	// deadline does not block.
	ch := make(chan done, len(reqs))
	sem := make(chan struct{}, concurrency)
	pending := 0
	for _, r := range reqs {
		key := requestKey(r.Namespace, r.Reference)
		if _, dup := out[key]; dup {
			continue
		}
		out[key] = nil
		refs[key] = r.Reference
		pending++
		go func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ch <- done{key, nil}
				return
			}
			defer func() { <-sem }()
			ch <- done{key, safeVerify(ctx, v, r)}
		}()
	}
	for pending > 0 {
		select {
		case d := <-ch:
			out[d.key] = d.res
			pending--
		case <-ctx.Done():
			pending = 0
		}
	}
	for key, res := range out {
		if res == nil {
			out[key] = failed(refs[key], verify.ErrorRetrievalFailed, fmt.Sprintf("keyward serve: the verification did not finish in time (%v): denied, as every image not verified", context.Cause(ctx)))
		}
	}
	return out
}

// safeVerify calls v, turning a panic or a nil result into a failure.
func safeVerify(ctx context.Context, v Verifier, r ImageRequest) (res *verify.ReferenceResult) {
	defer func() {
		if p := recover(); p != nil {
			res = failed(r.Reference, verify.ErrorRetrievalFailed, fmt.Sprintf("keyward serve: internal error: %v", p))
		}
	}()
	res = v.VerifyImage(ctx, r)
	if res == nil {
		res = failed(r.Reference, verify.ErrorRetrievalFailed, "keyward serve: internal error: no result")
	}
	return res
}

func failed(ref string, kind verify.ArtifactErrorKind, msg string) *verify.ReferenceResult {
	return &verify.ReferenceResult{Version: verify.ResultVersion, Reference: ref, Signatures: []*verify.Result{},
		Error: &verify.ReferenceError{Kind: kind, Message: msg}}
}

// decision is the verdict on one image of a workload.
type decision struct {
	img Image
	// ref is the full reference; zero when the image does not parse.
	ref reference.Reference
	res *verify.ReferenceResult
	// problem says why the image is denied; "" when it is not.
	problem  string
	warnings []string
	// logged are the warnings with the checks' messages, for the audit
	// log.
	logged []string
}

// verdict is the audit log's word for d.
func (d *decision) verdict() string {
	switch {
	case d.problem != "":
		return "denied"
	case d.res != nil && d.res.Skipped:
		return "skipped"
	case len(d.warnings) > 0:
		return "warned"
	}
	return "allowed"
}

// digest is the digest verified, or the one the image names.
func (d *decision) digest() string {
	if d.res != nil && d.res.Artifact != nil {
		return d.res.Artifact.Digest.String()
	}
	return d.ref.Digest.String()
}

// decide parses and verifies the images of w.
func decide(ctx context.Context, v Verifier, concurrency int, w *Workload) []*decision {
	ds := make([]*decision, len(w.Images))
	var reqs []ImageRequest
	for i, img := range w.Images {
		d := &decision{img: img}
		ds[i] = d
		ref, err := reference.ParseImage(img.Image)
		if err != nil {
			d.problem = fmt.Sprintf("%s: %v", describe(img), err)
			continue
		}
		d.ref = ref
		reqs = append(reqs, ImageRequest{Namespace: w.Namespace, Reference: ref.Raw, PullSecrets: w.PullSecrets})
	}
	results := verifyAll(ctx, v, reqs, concurrency)
	for _, d := range ds {
		if d.problem != "" {
			continue
		}
		d.res = results[requestKey(w.Namespace, d.ref.Raw)]
		if reason := Failure(d.res); reason != "" {
			d.problem = describe(d.img) + ": " + reason
			continue
		}
		for _, w := range warningsOf(d.res) {
			d.warnings = append(d.warnings, fmt.Sprintf("%s check failed for %s, logged by %s statement %q", w.Check, describe(d.img), w.level, w.statement))
			d.logged = append(d.logged, fmt.Sprintf("%s: %s check failed: %s", describe(d.img), w.Check, firstLine(w.Message)))
		}
	}
	return ds
}

// describe names an image and its container.
func describe(img Image) string {
	return fmt.Sprintf("image %q (%s %q)", img.Image, img.Kind, img.Container)
}

// Failure says why res does not verify: the error kind, the statement,
// and for signatures that failed the check that failed with its message.
// It is "" when res verified.
func Failure(res *verify.ReferenceResult) string {
	if res.Verified && res.Error == nil {
		return ""
	}
	if res.Error == nil {
		return "not verified"
	}
	var b strings.Builder
	b.WriteString(string(res.Error.Kind))
	if res.Statement != "" {
		fmt.Fprintf(&b, " (trust policy statement %q)", res.Statement)
	}
	var checks []string
	seen := map[string]bool{}
	for _, s := range res.Signatures {
		if s.Passed || s.FailedCheck == "" {
			continue
		}
		text := string(s.FailedCheck) + " check failed"
		if c := s.Check(s.FailedCheck); c != nil && c.Message != "" {
			text += ": " + firstLine(c.Message)
		}
		if !seen[text] {
			seen[text] = true
			checks = append(checks, text)
		}
	}
	switch {
	case len(checks) > maxSignatureText:
		fmt.Fprintf(&b, ": %s; and %d more", strings.Join(checks[:maxSignatureText], "; "), len(checks)-maxSignatureText)
	case len(checks) > 0:
		fmt.Fprintf(&b, ": %s", strings.Join(checks, "; "))
	default:
		fmt.Fprintf(&b, ": %s", firstLine(res.Error.Message))
	}
	return b.String()
}

// Warnings are what a verified res reports but does not enforce: the
// checks of the signature that passed which failed with the action log
// (under an audit statement, every check but integrity), as notation
// prints them as warnings.
func Warnings(res *verify.ReferenceResult) []string {
	var out []string
	for _, w := range warningsOf(res) {
		text := fmt.Sprintf("%s check failed, logged by %s statement %q", w.Check, w.level, w.statement)
		if w.Message != "" {
			text += ": " + firstLine(w.Message)
		}
		out = append(out, text)
	}
	return out
}

// warning is a check that failed with the action log, and the statement
// that logged it.
type warning struct {
	verify.CheckResult
	statement string
	level     string
}

func warningsOf(res *verify.ReferenceResult) []warning {
	var out []warning
	for _, s := range res.Signatures {
		if !s.Passed {
			continue
		}
		for _, c := range s.Warnings() {
			out = append(out, warning{c, s.Statement, string(s.Level)})
		}
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// clip shortens s to at most n runes, marking the cut, and replaces
// control characters (a warning travels in an HTTP header).
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// denial is the message of a denied request: every problem, bounded.
func denial(problems []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "keyward: %d image(s) not verified: ", len(problems))
	for i, p := range problems {
		if i == maxProblems {
			fmt.Fprintf(&b, "; and %d more", len(problems)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(clip(p, maxProblemRunes))
	}
	return clip(b.String(), maxMessageRunes)
}

// warningList bounds warnings as kube-apiserver passes them on.
func warningList(ws []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range ws {
		w = clip(w, maxWarningRunes)
		if seen[w] {
			continue
		}
		seen[w] = true
		if len(out) == maxWarnings {
			out[len(out)-1] = "keyward: more warnings not shown; see keyward serve's audit log"
			break
		}
		out = append(out, w)
	}
	return out
}

// budget is the time a webhook request may take: the timeout the
// apiserver sends (?timeout=10s), less a margin for the answer to travel,
// capped by limit.
func budget(query string, limit time.Duration) time.Duration {
	d, err := time.ParseDuration(query)
	if err != nil || d <= 0 {
		return limit
	}
	if margin := min(max(d/10, 100*time.Millisecond), time.Second); d > margin {
		d -= margin
	} else {
		d /= 2
	}
	return min(d, limit)
}
