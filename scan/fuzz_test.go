package scan

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode"

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/policy"
)

// checkSignature holds what a registry's bytes may never make of a
// signature: nothing verified (only a trust policy or a --cosign-key
// verifies), no trusted identity a trust policy would refuse, and nothing
// that reaches a terminal with a control character.
func checkSignature(t *testing.T, s *Signature) {
	t.Helper()
	if s.Verified {
		t.Fatalf("parsing alone marked a signature verified: %+v", s)
	}
	for _, id := range s.Identities {
		checkIdentity(t, id)
	}
}

func checkIdentity(t *testing.T, id *Identity) {
	t.Helper()
	if id == nil {
		return
	}
	if id.Verified {
		t.Fatalf("parsing alone marked an identity verified: %+v", id)
	}
	for _, ti := range id.TrustedIdentities {
		switch {
		case strings.HasPrefix(ti, policy.X509SubjectPrefix+":"):
			if _, err := policy.ParseDN(strings.TrimSpace(strings.TrimPrefix(ti, policy.X509SubjectPrefix+":"))); err != nil {
				t.Fatalf("trusted identity %q is not policy-ready: %v", ti, err)
			}
		case identity.IsKeyward(ti):
			if _, err := identity.Parse(ti, policy.SubjectRules()); err != nil {
				t.Fatalf("trusted identity %q is not policy-ready: %v", ti, err)
			}
		default:
			t.Fatalf("trusted identity %q of no known form", ti)
		}
	}
	for _, v := range append([]string{id.Subject, id.Issuer, id.X509Subject, id.KeyHint, id.OIDCIssuer}, id.SANs...) {
		if c := clean(v); strings.ContainsFunc(c, func(r rune) bool {
			return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
		}) {
			t.Fatalf("clean(%q) left a control character", v)
		}
	}
}

// FuzzCosignFormats feeds arbitrary bytes, as a hostile registry serves
// them, to the parsers of cosign Simple Signing payloads, DSSE envelopes,
// Sigstore bundles, cosign layer annotations (certificate, Rekor bundle)
// and Notary Project envelopes: none panics, none marks anything verified,
// and every trusted identity they suggest is one a trust policy accepts.
func FuzzCosignFormats(f *testing.F) {
	subject := "sha256:" + strings.Repeat("ab", 32)
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"`+subject+`"},"type":"cosign container image signature"},"optional":{"creator":"x"}}`), "")
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"kp7Kyl9m0bGx5Q2Yq3bWq8dO1mE0Zk6pQyJ4Zg1uV3E="}},"dsseEnvelope":{"payload":"eyJwcmVkaWNhdGVUeXBlIjoiaHR0cHM6Ly9zaWdzdG9yZS5kZXYvY29zaWduL3NpZ24vdjEiLCJzdWJqZWN0IjpbeyJkaWdlc3QiOnsic2hhMjU2IjoiYWIifX1dfQ==","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AAAA"}]}}`), "")
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"a b=c\u001b[2J"}},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"qqo="}}}`), "")
	f.Add([]byte(`{"verificationMaterial":{"certificate":{"rawBytes":"MIIB"}}}`), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"eyJwcmVkaWNhdGVUeXBlIjoieCJ9"}`), `{"SignedEntryTimestamp":"AA==","Payload":{"body":"`+base64.StdEncoding.EncodeToString([]byte(`{"spec":{"signature":{"publicKey":{"content":"LS0t"}}}}`))+`"}}`)
	f.Add([]byte(`{"payload":"e30","protected":"e30","header":{"x5c":["MIIB"]},"signature":"AA"}`), "")
	f.Add([]byte{0xd2, 0x84, 0x40, 0xa0, 0xf6, 0x40}, "")
	f.Fuzz(func(t *testing.T, data []byte, annotation string) {
		for _, read := range []func(*Signature){
			func(s *Signature) { readSimpleSigning(s, data, subject) },
			func(s *Signature) { readBundle(s, data, subject) },
			func(s *Signature) { readDSSE(s, data) },
		} {
			s := &Signature{Identities: []*Identity{}}
			read(s)
			checkSignature(t, s)
		}
		for _, key := range []string{annCosignCert, annCosignRekor} {
			id, _ := cosignLayerIdentity(map[string]string{key: annotation})
			checkIdentity(t, id)
		}
		if id, err := keyOrCertIdentity(data); err == nil {
			checkIdentity(t, id)
		}
		for _, mt := range []string{"application/jose+json", "application/cose"} {
			if id, err := notationIdentity(mt, data, &chains{}); err == nil {
				checkIdentity(t, id)
			}
		}
	})
}
