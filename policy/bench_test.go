package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"
)

// benchDocument builds a valid OCI trust policy with n statements of the
// usual shape: one or two repositories, a ca: store (and a tsa: store for
// every fourth), one or two x509.subject identities, overrides on some,
// and a final "*" statement.
func benchDocument(n int) []byte {
	type sv struct {
		Level           string            `json:"level"`
		Override        map[string]string `json:"override,omitempty"`
		VerifyTimestamp string            `json:"verifyTimestamp,omitempty"`
	}
	type st struct {
		Name                  string   `json:"name"`
		RegistryScopes        []string `json:"registryScopes"`
		SignatureVerification sv       `json:"signatureVerification"`
		TrustStores           []string `json:"trustStores"`
		TrustedIdentities     []string `json:"trustedIdentities"`
	}
	levels := []string{"strict", "permissive", "audit"}
	doc := struct {
		Version       string `json:"version"`
		TrustPolicies []st   `json:"trustPolicies"`
	}{Version: "1.0"}
	for i := 0; i < n-1; i++ {
		s := st{
			Name:                  fmt.Sprintf("team-%d-images", i),
			RegistryScopes:        []string{fmt.Sprintf("registry.example.com/team-%d/app", i)},
			SignatureVerification: sv{Level: levels[i%3]},
			TrustStores:           []string{fmt.Sprintf("ca:team-%d", i%50)},
			TrustedIdentities:     []string{fmt.Sprintf("x509.subject: C=US, ST=WA, L=Seattle, O=Example Corp, OU=Team %d, CN=Release Signer", i)},
		}
		if i%2 == 0 {
			s.RegistryScopes = append(s.RegistryScopes, fmt.Sprintf("registry.example.com:5000/team-%d/worker", i))
			s.TrustedIdentities = append(s.TrustedIdentities, fmt.Sprintf("x509.subject: C=US, ST=WA, L=Seattle, O=Example Corp, OU=Team %d, CN=CI Signer", i))
		}
		if i%4 == 0 {
			s.TrustStores = append(s.TrustStores, "tsa:example-tsa")
			s.SignatureVerification.VerifyTimestamp = "afterCertExpiry"
			s.SignatureVerification.Override = map[string]string{"revocation": "log"}
		}
		doc.TrustPolicies = append(doc.TrustPolicies, s)
	}
	doc.TrustPolicies = append(doc.TrustPolicies, st{Name: "everything-else", RegistryScopes: []string{"*"},
		SignatureVerification: sv{Level: "audit"}, TrustStores: []string{"ca:team-0"}, TrustedIdentities: []string{"*"}})
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return out
}

var benchSizes = []int{10, 1000, 10000}

// BenchmarkValidate loads and validates documents of 10, 1,000 and 10,000
// statements from bytes, with keyward (Parse: JSON with positions, every
// rule, and the schema validator, which Parse skips for documents the rules
// and the structure check accept; keyward-always-schema runs it anyway, as
// on a document with problems) and with notation-go v1.3.2 (json.Decoder
// into trustpolicy.Document, then Validate, as notation's LoadDocument
// does). scripts/bench/policy.sh prints them and the ratios.
func BenchmarkValidate(b *testing.B) {
	for _, n := range benchSizes {
		data := benchDocument(n)
		if _, err := Parse(data, "", TypeOCI); err != nil {
			b.Fatalf("the %d-statement document is invalid: %v", n, err)
		}
		b.Run(fmt.Sprintf("statements=%d/impl=keyward", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := Parse(data, "", TypeOCI); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("statements=%d/impl=keyward-always-schema", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := parse(data, "", TypeOCI, true); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("statements=%d/impl=notation-go", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				var doc trustpolicy.Document
				if err := json.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
					b.Fatal(err)
				}
				if err := doc.Validate(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestBenchDocumentsFit(t *testing.T) {
	for _, n := range benchSizes {
		data := benchDocument(n)
		if len(data) > MaxDocumentSize {
			t.Errorf("%d statements take %d bytes, over MaxDocumentSize", n, len(data))
		}
		doc, err := Parse(data, "", TypeOCI)
		if err != nil {
			t.Fatalf("%d statements: %v", n, err)
		}
		if len(doc.Statements()) != n {
			t.Errorf("%d statements loaded, want %d", len(doc.Statements()), n)
		}
	}
}
