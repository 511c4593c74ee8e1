package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
)

// DefaultMaxSignatures is notation verify's --max-signatures default.
const DefaultMaxSignatures = 100

// ErrStop ends a SignatureSource's listing without error. It is
// oci.ErrStop, so oci sources need no translation.
var ErrStop = oci.ErrStop

// SignatureSource gives the signatures of one artifact.
type SignatureSource interface {
	// Signatures calls fn with the descriptor of each signature manifest,
	// in the order they are to be tried, until fn returns an error. When
	// fn returns ErrStop the listing ends and Signatures returns nil (or
	// ErrStop); other errors of fn are returned.
	Signatures(ctx context.Context, fn func(manifest ocispec.Descriptor) error) error
	// Fetch returns the envelope of a signature manifest.
	Fetch(ctx context.Context, manifest ocispec.Descriptor) (Envelope, error)
}

// ArtifactRequest says what an artifact is verified for.
type ArtifactRequest struct {
	Request
	// MaxSignatures is how many signatures are evaluated at most
	// (notation verify --max-signatures); it must be positive.
	MaxSignatures int
}

// ArtifactResult is the verification of an artifact.
type ArtifactResult struct {
	Reference string             `json:"reference"`
	Artifact  ocispec.Descriptor `json:"artifact"`
	Statement string             `json:"statement"`
	Level     policy.Level       `json:"level"`
	// Skipped is true when the statement's level is skip: the artifact is
	// accepted and its signatures are not read.
	Skipped bool `json:"skipped"`
	// Passed reports whether the artifact verifies.
	Passed bool `json:"passed"`
	// Signatures are the signatures evaluated, in order; evaluation stops
	// at the first that passes.
	Signatures []*Result `json:"signatures"`
	// Verified is the signature that passed (the last of Signatures).
	Verified *Result `json:"-"`
}

// ArtifactErrorKind says why an artifact did not verify.
type ArtifactErrorKind string

// The kinds of ArtifactError.
const (
	// ErrorNoSignature: the artifact has no signature.
	ErrorNoSignature ArtifactErrorKind = "no-signature"
	// ErrorLimitExceeded: MaxSignatures signatures failed.
	ErrorLimitExceeded ArtifactErrorKind = "limit-exceeded"
	// ErrorVerificationFailed: every signature failed.
	ErrorVerificationFailed ArtifactErrorKind = "verification-failed"
	// ErrorRetrievalFailed: a signature could not be listed or fetched.
	ErrorRetrievalFailed ArtifactErrorKind = "retrieval-failed"
)

// ArtifactError is why an artifact did not verify; its message is
// notation-go v1.3.2's (notation.Verify).
type ArtifactError struct {
	Kind ArtifactErrorKind
	Msg  string
	// Err is the cause: the retrieval error, or the failed signatures'
	// errors.
	Err error
}

// Error returns notation's message.
func (e *ArtifactError) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *ArtifactError) Unwrap() error { return e.Err }

// VerifyArtifact verifies an artifact as notation verify does (spec
// "Signature Verification"; notation-go notation.Verify): under a skip
// statement it passes without reading signatures; otherwise it evaluates
// the signatures src lists, one at a time in order, and stops at the first
// that passes. It fails when there is none, when MaxSignatures of them
// failed, when all failed, or when one cannot be fetched. The result is
// never nil; the error is an *ArtifactError.
func (v *Verifier) VerifyArtifact(ctx context.Context, req ArtifactRequest, src SignatureSource) (*ArtifactResult, error) {
	res := &ArtifactResult{Reference: req.Reference, Artifact: req.Artifact}
	st := req.Statement
	if st == nil {
		return res, errors.New("verify: Request.Statement is nil")
	}
	res.Statement, res.Level = st.Name(), st.Level()
	if st.Level() == policy.LevelSkip {
		res.Skipped, res.Passed = true, true
		return res, nil
	}
	if req.MaxSignatures <= 0 {
		return res, fmt.Errorf("max-signatures value %d must be a positive number", req.MaxSignatures)
	}
	limitErr := &ArtifactError{
		Kind: ErrorLimitExceeded,
		Msg:  fmt.Sprintf("signature evaluation stopped. The configured limit of %d signatures to verify per artifact exceeded", req.MaxSignatures),
	}
	var failures []error
	err := src.Signatures(ctx, func(manifest ocispec.Descriptor) error {
		if len(res.Signatures) >= req.MaxSignatures {
			return limitErr
		}
		env, err := src.Fetch(ctx, manifest)
		if err != nil {
			return &ArtifactError{
				Kind: ErrorRetrievalFailed,
				Msg:  fmt.Sprintf("unable to retrieve digital signature with digest %q associated with %q from the Repository, error : %v", manifest.Digest, req.Reference, err),
				Err:  err,
			}
		}
		if env.Manifest.Digest == "" {
			env.Manifest = manifest
		}
		r := v.Verify(ctx, req.Request, env)
		// Judged: the envelope's bytes are released (oci bounds those in
		// flight) and dropped.
		env.Release()
		res.Signatures = append(res.Signatures, r)
		if r.Passed {
			res.Passed, res.Verified = true, r
			return ErrStop
		}
		failures = append(failures, fmt.Errorf("failed to verify signature with digest %v, %w", manifest.Digest, r.Err))
		// notation counts a signature against the limit as soon as it is
		// evaluated, so failing the last one allowed stops the search even
		// if no other signature exists.
		if len(res.Signatures) >= req.MaxSignatures {
			return limitErr
		}
		return nil
	})
	switch {
	case res.Passed:
		return res, nil
	case err != nil && !errors.Is(err, ErrStop):
		var ae *ArtifactError
		if errors.As(err, &ae) {
			return res, ae
		}
		return res, &ArtifactError{Kind: ErrorRetrievalFailed, Msg: err.Error(), Err: err}
	case len(res.Signatures) == 0:
		return res, &ArtifactError{
			Kind: ErrorNoSignature,
			Msg:  fmt.Sprintf("no signature is associated with %q, make sure the artifact was signed successfully", req.Reference),
		}
	}
	// errors.Join of notation's ErrorVerificationFailed{} and each failure.
	msgs := []string{"signature verification failed"}
	for _, f := range failures {
		msgs = append(msgs, f.Error())
	}
	return res, &ArtifactError{Kind: ErrorVerificationFailed, Msg: strings.Join(msgs, "\n"), Err: errors.Join(failures...)}
}

// FromOCI adapts a signature source of package oci to one artifact.
func FromOCI(src oci.Source, a oci.Artifact) SignatureSource {
	return &ociSource{src: src, a: a}
}

type ociSource struct {
	src oci.Source
	a   oci.Artifact
}

func (s *ociSource) Signatures(ctx context.Context, fn func(ocispec.Descriptor) error) error {
	return s.src.Signatures(ctx, s.a, fn)
}

func (s *ociSource) Fetch(ctx context.Context, manifest ocispec.Descriptor) (Envelope, error) {
	sig, err := s.src.Fetch(ctx, s.a, manifest)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{MediaType: sig.MediaType, Bytes: sig.Envelope, Manifest: sig.Manifest, release: sig.Release}, nil
}
