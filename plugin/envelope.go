package plugin

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/tspclient-go"

	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/keys"
)

// Envelope media types (signature-envelope-jws.md, signature-envelope-cose.md).
const (
	envelopeJWS  = jws.MediaTypeEnvelope
	envelopeCOSE = cose.MediaTypeEnvelope
)

// SigningAgent is the unsigned signing-agent attribute of envelopes keyward
// builds. notation writes "notation-go/<version>" for the envelopes it builds.
func SigningAgent() string { return "keyward/" + version.Version }

type envelopeRequest struct {
	mediaType   string
	payload     []byte
	signingTime time.Time
	expiry      time.Duration
	scheme      signature.SigningScheme

	// With a timestamper, the signature gets an RFC 3161 countersignature
	// whose chain must end in tsaRoots and pass tsaRevocation.
	timestamper   tspclient.Timestamper
	tsaRoots      *x509.CertPool
	tsaRevocation revocation.Validator

	// verificationPlugin adds the signed critical attributes that name
	// keyward as the verification plugin.
	verificationPlugin bool
}

// buildEnvelope signs payload into a complete JWS or COSE envelope with
// notation-core-go, then parses and verifies the result as notation will
// (notation-go generateSignatureEnvelope): integrity, the certificate chain
// rules and the payload content type.
func buildEnvelope(k *keys.Key, r envelopeRequest) ([]byte, error) {
	env, err := signature.NewEnvelope(r.mediaType)
	if err != nil {
		return nil, fmt.Errorf("create %s envelope: %w", r.mediaType, err)
	}
	signer := &envelopeSigner{key: k}
	req := &signature.SignRequest{
		Payload:       signature.Payload{ContentType: PayloadType, Content: r.payload},
		Signer:        signer,
		SigningTime:   r.signingTime,
		SigningScheme: r.scheme,
		SigningAgent:  SigningAgent(),

		Timestamper:            r.timestamper,
		TSARootCAs:             r.tsaRoots,
		TSARevocationValidator: r.tsaRevocation,
	}
	if r.expiry > 0 {
		req.Expiry = r.signingTime.Add(r.expiry)
	}
	if r.verificationPlugin {
		// Sorted keys: envelopes of one request are reproducible.
		attrs := verificationPluginAttributes()
		for _, k := range []string{AttrVerificationPlugin, AttrVerificationPluginMinVersion} {
			req.ExtendedSignedAttributes = append(req.ExtendedSignedAttributes, signature.Attribute{Key: k, Critical: true, Value: attrs[k]})
		}
	}
	raw, err := env.Sign(req)
	if err != nil {
		// notation-core-go flattens the signer's error into a message;
		// return the signer's own error so its kind (ACCESS_DENIED for a
		// refused PIN, say) reaches notation.
		if signer.err != nil {
			return nil, signer.err
		}
		return nil, fmt.Errorf("build the %s envelope: %w", r.mediaType, err)
	}
	parsed, err := signature.ParseEnvelope(r.mediaType, raw)
	if err != nil {
		return nil, fmt.Errorf("the %s envelope keyward built does not parse: %w", r.mediaType, err)
	}
	content, err := parsed.Verify()
	if err != nil {
		return nil, fmt.Errorf("the %s envelope keyward built does not verify: %w", r.mediaType, err)
	}
	if ct := content.Payload.ContentType; ct != PayloadType {
		return nil, fmt.Errorf("the %s envelope keyward built has payload content type %q", r.mediaType, ct)
	}
	return raw, nil
}

// envelopeSigner is the notation-core-go signature.Signer of a key: core
// builds the signing input (JWS) or Sig_structure (COSE) and calls Sign with
// it, exactly the bytes notation sends to generate-signature in raw mode.
type envelopeSigner struct {
	key *keys.Key
	err error
}

var _ signature.Signer = (*envelopeSigner)(nil)

// Sign signs the to-be-signed bytes and returns the chain, leaf first.
func (s *envelopeSigner) Sign(payload []byte) ([]byte, []*x509.Certificate, error) {
	sig, err := s.key.SignMessage(payload)
	if err != nil {
		s.err = err
		return nil, nil, err
	}
	return sig, s.key.Chain, nil
}

// KeySpec returns the key spec of the leaf certificate.
func (s *envelopeSigner) KeySpec() (signature.KeySpec, error) {
	return signature.ExtractKeySpec(s.key.Chain[0])
}
