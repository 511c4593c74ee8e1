package verify

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/coreshim"
)

// integrityEntry is the outcome of parsing and verifying an envelope.
type integrityEntry struct {
	content      *signature.EnvelopeContent // read-only once made
	err          error
	inconclusive bool
}

// maxCachedEnvelope bounds the envelopes whose integrity is remembered, so
// the cache stays small; real envelopes are a few kilobytes.
const maxCachedEnvelope = 64 << 10

// envelopeIntegrity parses and verifies an envelope, once per envelope in
// the life of the Verifier for envelopes up to maxCachedEnvelope: an
// artifact referenced twice, or verified under two statements, costs one
// verification.
func (v *Verifier) envelopeIntegrity(ctx context.Context, env Envelope) integrityEntry {
	compute := func() (integrityEntry, bool) {
		sigEnv, err := signature.ParseEnvelope(env.MediaType, env.Bytes)
		if err != nil {
			return integrityEntry{err: fmt.Errorf("unable to parse the digital signature, error : %s", err)}, true
		}
		content, err := v.verifyEnvelope(ctx, sigEnv)
		if err != nil {
			// notation-go reports these as integrity failures and
			// anything else as inconclusive (verifier.verifyIntegrity).
			switch err.(type) {
			case *signature.SignatureEnvelopeNotFoundError, *signature.InvalidSignatureError, *signature.SignatureIntegrityError:
				return integrityEntry{err: err}, true
			}
			return integrityEntry{err: err, inconclusive: true}, true
		}
		return integrityEntry{content: content}, true
	}
	if len(env.Bytes) > maxCachedEnvelope {
		ie, _ := compute()
		return ie
	}
	h := sha256.New()
	h.Write([]byte(env.MediaType))
	h.Write([]byte{0})
	h.Write(env.Bytes)
	return v.envelopes.get(ctx, string(h.Sum(nil)), compute)
}

// verifyEnvelope verifies env as notation-core-go's Envelope.Verify does,
// with one difference: the certificate chain validation, which does not
// depend on the time (it is called without a signing time) and costs two
// to three signature checks, is made once per distinct chain in the life of
// the Verifier. Thousands of signatures by one signer cost one chain
// validation. The copy of Envelope.Verify this needs lives in
// internal/coreshim, pinned to the notation-core-go version in go.mod; its
// checks, their order, the error types and the messages are
// notation-core-go's, so verdicts are notation's (the differential tests
// compare them).
//
// When the parsed envelope is not the wrapper coreshim expects (another
// notation-core-go version), it calls the envelope's own Verify.
func (v *Verifier) verifyEnvelope(ctx context.Context, env signature.Envelope) (*signature.EnvelopeContent, error) {
	raw := coreshim.Unwrap(env)
	if raw == nil {
		return env.Verify()
	}
	return coreshim.Verify(raw, func(chain []*x509.Certificate) error { return v.validateChain(ctx, chain) })
}

// validateChain is coreshim.ValidateChain, remembered per chain (the DER
// bytes of its certificates, in order).
func (v *Verifier) validateChain(ctx context.Context, chain []*x509.Certificate) error {
	e := v.chains.get(ctx, chainKey(chain), func() (chainEntry, bool) {
		return chainEntry{coreshim.ValidateChain(chain)}, true
	})
	return e.err
}

// chainEntry is the outcome of validating a certificate chain.
type chainEntry struct{ err error }
