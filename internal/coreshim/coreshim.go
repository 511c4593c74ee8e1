// Package coreshim is keyward's one copy of notation-core-go code that
// keyward cannot call in parts: the verification of a signature envelope,
// Envelope.Verify of notation-core-go's internal wrapper
// (notation-core-go v1.3.0 signature/internal/base/envelope.go, the type
// base.Envelope that signature.ParseEnvelope returns).
//
// keyward verifies thousands of envelopes signed with one certificate
// chain, and the chain validation inside base.Envelope.Verify costs two to
// three signature checks per envelope. Package verify therefore unwraps the
// format envelope (JWS or COSE) with [Unwrap], which reaches the internal
// wrapper by reflection, and runs [Verify], which is base.Envelope.Verify
// with the chain validation supplied by the caller (verify remembers
// [ValidateChain]'s verdict per chain). The checks, their order, the error
// types and the messages are base.Envelope's.
//
// The copy is pinned to [Version]: the package's tests fail when go.mod
// requires another notation-core-go or when the wrapper changes shape, so
// that an upgrade re-reads the upstream file. Callers fall back to the
// envelope's own Verify when [Unwrap] returns nil.
package coreshim

import (
	"crypto/x509"
	"fmt"
	"reflect"

	"github.com/notaryproject/notation-core-go/signature"
	nx509 "github.com/notaryproject/notation-core-go/x509"
)

// Module is the upstream module this package copies from.
const Module = "github.com/notaryproject/notation-core-go"

// Version is the version of [Module] whose signature/internal/base
// envelope.go this package reproduces.
const Version = "v1.3.0"

// WrapperType is the package path and name of the wrapper [Unwrap] opens.
const WrapperType = Module + "/signature/internal/base.Envelope"

// Unwrap returns the format envelope (JWS or COSE) inside the wrapper
// signature.ParseEnvelope returns (base.Envelope: an unexported-package
// struct with the exported fields Envelope and Raw), or nil when env is not
// such a wrapper or holds no raw bytes, in which case the caller must use
// env.Verify.
func Unwrap(env signature.Envelope) signature.Envelope {
	p := reflect.ValueOf(env)
	if p.Kind() != reflect.Pointer || p.IsNil() || p.Elem().Kind() != reflect.Struct {
		return nil
	}
	s := p.Elem()
	if s.Type().PkgPath()+"."+s.Type().Name() != WrapperType {
		return nil
	}
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

// Verify is base.Envelope.Verify for the format envelope raw (see
// [Unwrap]): the format's signature check, then validateEnvelopeContent,
// whose certificate chain validation without a signing time is
// validateChain, called with a non-empty chain; it must return what
// [ValidateChain] returns for that chain.
func Verify(raw signature.Envelope, validateChain func([]*x509.Certificate) error) (*signature.EnvelopeContent, error) {
	content, err := raw.Verify()
	if err != nil {
		return nil, err
	}
	return checkContent(content, validateChain)
}

// Content is base.Envelope.Content for the format envelope raw (see
// [Unwrap]): the content, unverified, checked by validateEnvelopeContent as
// in [Verify], with the chain validation validateChain.
func Content(raw signature.Envelope, validateChain func([]*x509.Certificate) error) (*signature.EnvelopeContent, error) {
	content, err := raw.Content()
	if err != nil {
		return nil, err
	}
	return checkContent(content, validateChain)
}

// checkContent is base's validateEnvelopeContent with the chain validation
// validateChain.
func checkContent(content *signature.EnvelopeContent, validateChain func([]*x509.Certificate) error) (*signature.EnvelopeContent, error) {
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
	if signingTime.IsZero() { // validateSigningAndExpiryTime
		return nil, &signature.InvalidSignatureError{Msg: "signing-time not present"}
	}
	if !expiry.IsZero() && !expiry.After(signingTime) {
		return nil, &signature.InvalidSignatureError{Msg: "expiry cannot be equal or before the signing time"}
	}
	if info.SignedAttributes.SigningScheme == "" {
		// validateSigningSchema returns a sign-request error here, which
		// notation-go counts as inconclusive.
		return nil, &signature.InvalidSignRequestError{Msg: "SigningScheme not present"}
	}
	chain := info.CertificateChain // validateCertificateChain
	if len(chain) == 0 {
		return nil, &signature.InvalidSignatureError{Msg: "certificate-chain not present or is empty"}
	}
	if err := validateChain(chain); err != nil {
		return nil, err
	}
	keySpec, err := signature.ExtractKeySpec(chain[0]) // getSignatureAlgorithm
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

// ValidateChain is validateCertificateChain's time-independent part:
// notation-core-go's ValidateCodeSigningCertChain without a signing time,
// with base's error type and message. It depends only on the chain, so its
// verdict may be remembered per chain.
func ValidateChain(chain []*x509.Certificate) error {
	if err := nx509.ValidateCodeSigningCertChain(chain, nil); err != nil {
		return &signature.InvalidSignatureError{Msg: fmt.Sprintf("certificate-chain is invalid, %s", err)}
	}
	return nil
}
