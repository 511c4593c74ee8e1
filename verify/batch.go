package verify

import (
	"context"
	"errors"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
)

// ResultVersion is the version of the result format
// (verify-result.schema.json, the "version" of every [ReferenceResult]).
const ResultVersion = "1"

// Two more kinds of ArtifactError than the evaluator's own: what fails a
// reference before any signature is read.
const (
	// ErrorPolicy: no trust policy statement applies to the reference, or
	// its scope breaks the registry scope grammar.
	ErrorPolicy ArtifactErrorKind = "policy"
	// ErrorResolve: the reference cannot be parsed or resolved to a
	// manifest.
	ErrorResolve ArtifactErrorKind = "resolve"
)

// ReferenceResult is the verification of one reference: one object of
// verify-result.schema.json (one line of keyward verify --output json).
type ReferenceResult struct {
	// Version is ResultVersion.
	Version string `json:"version"`
	// Reference is the reference as given.
	Reference string `json:"reference"`
	// Scope is the registry scope the statement was selected by.
	Scope string `json:"scope,omitempty"`
	// Tag is the tag the reference named, resolved to Artifact.Digest.
	Tag string `json:"tag,omitempty"`
	// Artifact describes the artifact's manifest, once resolved.
	Artifact *ocispec.Descriptor `json:"artifact,omitempty"`
	// Statement and Level name the trust policy statement applied.
	Statement string       `json:"statement,omitempty"`
	Level     policy.Level `json:"level,omitempty"`
	// Verified reports whether the reference verified (a skipped one
	// does).
	Verified bool `json:"verified"`
	// Skipped: the statement's level is skip; nothing was fetched.
	Skipped bool `json:"skipped"`
	// Signatures are the signatures evaluated, in order; evaluation stops
	// at the first that passes, as in notation.
	Signatures []*Result `json:"signatures"`
	// Error says why the reference did not verify.
	Error *ReferenceError `json:"error,omitempty"`
	// ElapsedMS is the wall time of this reference, in milliseconds.
	ElapsedMS int64 `json:"elapsedMs"`
}

// ReferenceError says why a reference did not verify.
type ReferenceError struct {
	// Kind is one of the ArtifactErrorKind constants.
	Kind ArtifactErrorKind `json:"kind"`
	// Message is the error message (notation's, where notation has one).
	Message string `json:"message"`
}

// Batch verifies artifact references against one trust policy: it selects
// each reference's statement, resolves the reference through Source, and
// evaluates its signatures with Verifier. It is what keyward verify runs,
// and what every front end that verifies artifacts should run, so that all
// reach the same verdicts. A Batch is safe for concurrent use; its Verifier
// and Source share their caches across the references of a run.
type Batch struct {
	// Policy is the OCI trust policy document. Required.
	Policy *policy.Document
	// Verifier evaluates signatures; it holds the trust stores. Required.
	Verifier *Verifier
	// Source resolves references and reads signatures. Required unless
	// every reference is skipped.
	Source oci.Source
	// MaxSignatures is how many signatures are evaluated at most per
	// artifact (default DefaultMaxSignatures).
	MaxSignatures int
	// PluginConfig is passed to verification plugins.
	PluginConfig map[string]string
	// UserMetadata are key/value pairs every signature must carry.
	UserMetadata map[string]string
}

// Verify verifies one reference. It never returns nil: whatever fails is in
// the result's Error, with Verified false.
func (b *Batch) Verify(ctx context.Context, ref reference.Reference) *ReferenceResult {
	start := time.Now()
	r := &ReferenceResult{Version: ResultVersion, Reference: ref.Raw, Scope: ref.Scope, Signatures: []*Result{}}
	defer func() { r.ElapsedMS = time.Since(start).Milliseconds() }()
	maxSignatures := b.MaxSignatures
	if maxSignatures <= 0 {
		maxSignatures = DefaultMaxSignatures
	}
	ctx = oci.WithRequestBudget(ctx, RequestBudget(maxSignatures))

	// The statement is chosen by scope before anything is fetched, so that
	// a skip statement never touches the registry (spec "Signature
	// Verification", step 2: "Get the applicable trust policy").
	sel, err := b.Policy.Select(ref)
	if err != nil {
		return fail(r, ErrorPolicy, err)
	}
	st := sel.Statement
	r.Statement, r.Level = st.Name(), st.Level()
	if st.SkipsVerification() {
		r.Verified, r.Skipped = true, true
		r.Tag = ref.Tag
		return r
	}
	if b.Source == nil {
		return fail(r, ErrorResolve, errors.New("verify: Batch.Source is nil"))
	}
	var early *earlyListing
	if ref.Digest != "" && !ref.IsLayout() {
		// The listing needs only the digest: it starts now, beside the
		// request that checks the digest (see earlyListing).
		early = listEarly(ctx, b.Source, ref)
		defer early.stop()
	}
	a, err := b.Source.Resolve(ctx, ref)
	if err != nil {
		return fail(r, ErrorResolve, err)
	}
	r.Tag = ref.Tag
	desc := a.Descriptor
	r.Artifact = &desc
	src := FromOCI(b.Source, a)
	if early != nil {
		src = early.source(src)
	}
	res, err := b.Verifier.VerifyArtifact(ctx, ArtifactRequest{
		Request: Request{
			Statement:    st,
			Artifact:     a.Descriptor,
			Reference:    ref.Pinned(a.Descriptor.Digest),
			PluginConfig: b.PluginConfig,
			UserMetadata: b.UserMetadata,
		},
		MaxSignatures: maxSignatures,
	}, src)
	if res != nil {
		r.Signatures = append(r.Signatures, res.Signatures...)
		r.Verified = res.Passed
	}
	if err != nil {
		kind := ErrorVerificationFailed
		var ae *ArtifactError
		if errors.As(err, &ae) {
			kind = ae.Kind
		}
		r.Verified = false
		return fail(r, kind, err)
	}
	return r
}

// RequestBudget is how many registry requests one reference may cost when
// at most maxSignatures signatures are evaluated: the resolution, every page
// of the referrers listing, a manifest and an envelope per signature, with
// room for retries and token requests. A registry that pages, redirects or
// fails without end is stopped there (SECURITY.md).
func RequestBudget(maxSignatures int) int {
	return 16 + oci.MaxListingPages + 4*maxSignatures
}

func fail(r *ReferenceResult, kind ArtifactErrorKind, err error) *ReferenceResult {
	r.Error = &ReferenceError{Kind: kind, Message: err.Error()}
	return r
}

// Parser parses one reference as given by a user: [reference.Parse], or a
// [reference.ParseLayout] bound to a scope.
type Parser func(string) (reference.Reference, error)

// VerifyAll parses and verifies refs with at most concurrency of them at
// once, and hands each result to emit as soon as it completes (completion
// order; emit is called by one goroutine at a time). A reference that
// cannot be parsed gets a result with an ErrorResolve error in its turn. It
// returns how many references did not verify.
func (b *Batch) VerifyAll(ctx context.Context, refs []string, parse Parser, concurrency int, emit func(*ReferenceResult)) int {
	if concurrency <= 0 {
		concurrency = 1
	}
	results := make(chan *ReferenceResult)
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(concurrency, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for raw := range work {
				results <- b.verifyRaw(ctx, raw, parse)
			}
		}()
	}
	go func() {
		for _, raw := range refs {
			work <- raw
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	failed := 0
	for r := range results {
		if !r.Verified {
			failed++
		}
		emit(r)
	}
	return failed
}

func (b *Batch) verifyRaw(ctx context.Context, raw string, parse Parser) *ReferenceResult {
	ref, err := parse(raw)
	if err != nil {
		r := &ReferenceResult{Version: ResultVersion, Reference: raw, Signatures: []*Result{}}
		return fail(r, ErrorResolve, err)
	}
	return b.Verify(ctx, ref)
}
