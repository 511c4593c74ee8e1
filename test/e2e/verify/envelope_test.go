package verify

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // registers application/cose
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // registers application/jose+json
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/testpki"
)

// jwsEnvelope is the JWS JSON serialization notation writes
// (signature-envelope-jws.md): the certificate chain and the signing agent
// are in the unprotected header, which the signature does not cover.
type jwsEnvelope struct {
	Payload   string                     `json:"payload"`
	Protected string                     `json:"protected"`
	Header    map[string]json.RawMessage `json:"header"`
	Signature string                     `json:"signature"`
}

// editJWS decodes a JWS envelope, lets edit change it, and encodes it again.
func editJWS(t testing.TB, env []byte, edit func(*jwsEnvelope)) []byte {
	t.Helper()
	var j jwsEnvelope
	if err := json.Unmarshal(env, &j); err != nil {
		t.Fatalf("notation's JWS envelope: %v", err)
	}
	edit(&j)
	out, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jwsCrit returns the crit list of a JWS envelope's protected header.
func jwsCrit(t testing.TB, env []byte) []string {
	t.Helper()
	var j jwsEnvelope
	if err := json.Unmarshal(env, &j); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(j.Protected)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Crit []string `json:"crit"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Crit
}

// x5c returns the DER certificates of a JWS envelope's unprotected x5c.
func x5c(t testing.TB, env []byte) [][]byte {
	t.Helper()
	var j jwsEnvelope
	if err := json.Unmarshal(env, &j); err != nil {
		t.Fatal(err)
	}
	return decodeX5C(t, &j)
}

func decodeX5C(t testing.TB, j *jwsEnvelope) [][]byte {
	t.Helper()
	var certs []string
	if err := json.Unmarshal(j.Header["x5c"], &certs); err != nil {
		t.Fatalf("x5c: %v", err)
	}
	var ders [][]byte
	for _, c := range certs {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			t.Fatal(err)
		}
		ders = append(ders, der)
	}
	return ders
}

// setX5C replaces the unprotected certificate chain.
func setX5C(t testing.TB, j *jwsEnvelope, ders [][]byte) {
	t.Helper()
	var certs []string
	for _, d := range ders {
		certs = append(certs, base64.StdEncoding.EncodeToString(d))
	}
	raw, err := json.Marshal(certs)
	if err != nil {
		t.Fatal(err)
	}
	j.Header["x5c"] = raw
}

// alterPayload adds an annotation to the signed payload's targetArtifact:
// the payload still names the artifact, but the signature no longer covers
// it.
func alterPayload(t testing.TB) func(*jwsEnvelope) {
	return func(j *jwsEnvelope) {
		raw, err := base64.RawURLEncoding.DecodeString(j.Payload)
		if err != nil {
			t.Fatalf("JWS payload: %v", err)
		}
		var p struct {
			TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatalf("JWS payload: %v", err)
		}
		p.TargetArtifact.Annotations = map[string]string{"io.keyward.corpus.tampered": "true"}
		raw, err = json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		j.Payload = base64.RawURLEncoding.EncodeToString(raw)
	}
}

// flipSignature flips one bit in the middle of the signature value.
func flipSignature(t testing.TB) func(*jwsEnvelope) {
	return func(j *jwsEnvelope) {
		sig, err := base64.RawURLEncoding.DecodeString(j.Signature)
		if err != nil || len(sig) == 0 {
			t.Fatalf("JWS signature: %v", err)
		}
		sig[len(sig)/2] ^= 0x01
		j.Signature = base64.RawURLEncoding.EncodeToString(sig)
	}
}

// dropRoot removes the last certificate (the root) of the chain.
func dropRoot(t testing.TB) func(*jwsEnvelope) {
	return func(j *jwsEnvelope) {
		ders := decodeX5C(t, j)
		if len(ders) < 3 {
			t.Fatalf("chain of %d certificates: want leaf, intermediate, root", len(ders))
		}
		setX5C(t, j, ders[:len(ders)-1])
	}
}

// swapIssuers puts the root before the intermediate: leaf, root,
// intermediate.
func swapIssuers(t testing.TB) func(*jwsEnvelope) {
	return func(j *jwsEnvelope) {
		ders := decodeX5C(t, j)
		if len(ders) != 3 {
			t.Fatalf("chain of %d certificates: want leaf, intermediate, root", len(ders))
		}
		setX5C(t, j, [][]byte{ders[0], ders[2], ders[1]})
	}
}

// envelopeSpec is an envelope the test builds with notation-core-go, for
// what notation sign cannot be made to produce.
type envelopeSpec struct {
	mediaType   string
	leaf        *testpki.Cert
	chain       []*x509.Certificate // leaf first, root last
	signingTime time.Time
	expiry      time.Time
	attributes  []signature.Attribute // extended signed attributes
}

// build signs a payload naming subject, as notation-go's signer does
// (payload {"targetArtifact": descriptor}, scheme notary.x509), and returns
// the envelope and its chain in DER.
func (s envelopeSpec) build(t testing.TB, subject ocispec.Descriptor) ([]byte, [][]byte) {
	t.Helper()
	payload, err := json.Marshal(map[string]ocispec.Descriptor{"targetArtifact": {
		MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size,
	}})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := signature.NewLocalSigner(s.chain, s.leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signature.NewEnvelope(s.mediaType)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := env.Sign(&signature.SignRequest{
		Payload:                  signature.Payload{ContentType: mediaTypePayload, Content: payload},
		Signer:                   signer,
		SigningTime:              s.signingTime,
		Expiry:                   s.expiry,
		ExtendedSignedAttributes: s.attributes,
		SigningAgent:             "keyward-corpus/1",
		SigningScheme:            signature.SigningSchemeX509,
	})
	if err != nil {
		t.Fatalf("notation-core-go sign: %v", err)
	}
	var ders [][]byte
	for _, c := range s.chain {
		ders = append(ders, c.Raw)
	}
	return raw, ders
}
