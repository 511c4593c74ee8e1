package verify

import (
	"context"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/coreshim"
)

// CacheSizes reports how many entries each in-memory cache of v holds, for
// the tests of package verify_test.
func CacheSizes(v *Verifier) map[string]int {
	return map[string]int{
		"envelopes":   v.envelopes.len(),
		"chains":      v.chains.len(),
		"stores":      v.stores.len(),
		"revocations": v.revocations.len(),
		"tokens":      v.tokens.len(),
		"metadata":    v.metadata.len(),
	}
}

// VerifyEnvelope verifies an envelope both ways: with v's verifyEnvelope
// (chain validation remembered) and with notation-core-go's own
// Envelope.Verify. unwrapped says whether v's way reached the format
// envelope, rather than falling back to notation-core-go's.
func VerifyEnvelope(v *Verifier, mediaType string, b []byte) (ours, theirs *signature.EnvelopeContent, oursErr, theirsErr error, unwrapped bool) {
	env, err := signature.ParseEnvelope(mediaType, b)
	if err != nil {
		return nil, nil, err, err, false
	}
	ours, oursErr = v.verifyEnvelope(context.Background(), env)
	theirs, theirsErr = env.Verify()
	return ours, theirs, oursErr, theirsErr, coreshim.Unwrap(env) != nil
}
