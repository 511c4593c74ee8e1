package verify

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/notaryproject/notation-core-go/signature"
	nx509 "github.com/notaryproject/notation-core-go/x509"
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

// verifyEnvelope is notation-core-go's Envelope.Verify
// (signature/internal/base, v1.3.0) with one difference: the certificate
// chain validation, which does not depend on the time (it is called
// without a signing time) and costs two to three signature checks, is made
// once per distinct chain in the life of the Verifier. Thousands of
// signatures by one signer cost one chain validation. The checks, their
// order, the error types and the messages are base.Envelope's, so verdicts
// are notation's (the differential tests compare them).
//
// When the parsed envelope is not the wrapper this expects (another
// notation-core-go version), it calls the envelope's own Verify.
func (v *Verifier) verifyEnvelope(ctx context.Context, env signature.Envelope) (*signature.EnvelopeContent, error) {
	raw := unwrapEnvelope(env)
	if raw == nil {
		return env.Verify()
	}
	// base.Envelope.Verify: the format's signature check, then
	// validateEnvelopeContent.
	content, err := raw.Verify()
	if err != nil {
		return nil, err
	}
	if len(content.Payload.Content) == 0 { // validatePayload
		return nil, &signature.InvalidSignatureError{Msg: "content not present"}
	}
	info := &content.SignerInfo // validateSignerInfo
	if len(info.Signature) == 0 {
		return nil, &signature.InvalidSignatureError{Msg: "signature not present or is empty"}
	}
	if info.SignatureAlgorithm == 0 {
		return nil, &signature.InvalidSignatureError{Msg: "SignatureAlgorithm is not present"}
	}
	signingTime, expiry := info.SignedAttributes.SigningTime, info.SignedAttributes.Expiry
	if signingTime.IsZero() {
		return nil, &signature.InvalidSignatureError{Msg: "signing-time not present"}
	}
	if !expiry.IsZero() && !expiry.After(signingTime) {
		return nil, &signature.InvalidSignatureError{Msg: "expiry cannot be equal or before the signing time"}
	}
	if info.SignedAttributes.SigningScheme == "" {
		// base's validateSigningSchema returns a sign-request error here,
		// which notation-go counts as inconclusive.
		return nil, &signature.InvalidSignRequestError{Msg: "SigningScheme not present"}
	}
	if err := v.validateChain(ctx, info.CertificateChain); err != nil { // validateCertificateChain
		return nil, err
	}
	keySpec, err := signature.ExtractKeySpec(info.CertificateChain[0])
	if err != nil {
		return nil, &signature.InvalidSignatureError{Msg: err.Error()}
	}
	if alg := keySpec.SignatureAlgorithm(); alg != info.SignatureAlgorithm {
		return nil, &signature.InvalidSignatureError{
			Msg: fmt.Sprintf("mismatch between signature algorithm derived from signing certificate (%v) and signing algorithm specified (%vs)", alg, info.SignatureAlgorithm),
		}
	}
	return content, nil
}

// validateChain is base.validateCertificateChain's time-independent part:
// notation-core-go's ValidateCodeSigningCertChain without a signing time,
// remembered per chain (the DER bytes of its certificates, in order).
func (v *Verifier) validateChain(ctx context.Context, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return &signature.InvalidSignatureError{Msg: "certificate-chain not present or is empty"}
	}
	h := sha256.New()
	var n [8]byte
	for _, c := range chain {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	e := v.chains.get(ctx, string(h.Sum(nil)), func() (chainEntry, bool) {
		if err := nx509.ValidateCodeSigningCertChain(chain, nil); err != nil {
			return chainEntry{&signature.InvalidSignatureError{Msg: fmt.Sprintf("certificate-chain is invalid, %s", err)}}, true
		}
		return chainEntry{}, true
	})
	return e.err
}

// chainEntry is the outcome of validating a certificate chain.
type chainEntry struct{ err error }

// unwrapEnvelope returns the format envelope (JWS or COSE) inside the
// wrapper notation-core-go's ParseEnvelope returns (base.Envelope, an
// internal type with an exported field Envelope), or nil when env is not
// such a wrapper. The wrapper's Verify is reproduced by verifyEnvelope.
func unwrapEnvelope(env signature.Envelope) signature.Envelope {
	p := reflect.ValueOf(env)
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		return nil
	}
	s := p.Elem()
	raw, ok := s.Type().FieldByName("Raw")
	if !ok || raw.Type != reflect.TypeFor[[]byte]() || s.FieldByIndex(raw.Index).Len() == 0 {
		return nil // base.Envelope.Verify: SignatureNotFoundError without Raw
	}
	f := s.FieldByName("Envelope")
	if !f.IsValid() || !f.CanInterface() || f.Kind() != reflect.Interface || f.IsNil() {
		return nil
	}
	inner, ok := f.Interface().(signature.Envelope)
	if !ok {
		return nil
	}
	return inner
}
