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
// and a final "*" statement. indent false writes it on one line, as
// json.dumps, jq -c or a ConfigMap generator would.
func benchDocument(n int, indent bool) []byte {
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
	return marshalBench(doc, indent)
}

// identitiesDocument builds a valid trust policy with one statement that
// lists n x509.subject identities, none a subset of another.
func identitiesDocument(n int) []byte {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("x509.subject: C=US, ST=WA, L=Seattle, O=Example Corp, OU=Team %d, CN=Release Signer", i)
	}
	doc := map[string]any{"version": "1.0", "trustPolicies": []any{map[string]any{
		"name": "many-signers", "registryScopes": []string{"registry.example.com/app"},
		"signatureVerification": map[string]any{"level": "strict"},
		"trustStores":           []string{"ca:acme"}, "trustedIdentities": ids,
	}}}
	return marshalBench(doc, true)
}

func marshalBench(doc any, indent bool) []byte {
	var out []byte
	var err error
	if indent {
		out, err = json.MarshalIndent(doc, "", "  ")
	} else {
		out, err = json.Marshal(doc)
	}
	if err != nil {
		panic(err)
	}
	return out
}

// benchSizes are the statement counts benchmarked. 100,000 statements
// (about 28 MB indented) are over MaxDocumentSize: keyward reads them with
// the limit lifted, to show that the cost per statement stays flat.
var benchSizes = []int{10, 1000, 10000, 100000}

// benchIdentities is the number of identities of the one-statement
// document.
const benchIdentities = 10000

// BenchmarkValidate loads and validates documents of 10 to 100,000
// statements, indented and on one line, and a statement of 10,000
// identities, from bytes, with keyward (Parse: JSON with positions, every
// rule, and the schema validator, which Parse skips for documents the rules
// and the structure check accept; keyward-always-schema runs it anyway, as
// on a document with problems, up to 10,000 statements) and with
// notation-go v1.3.2 (json.Decoder into trustpolicy.Document, then
// Validate, as notation's LoadDocument does). scripts/bench/policy.sh
// prints them and the ratios.
func BenchmarkValidate(b *testing.B) {
	type input struct {
		name   string
		data   []byte
		schema bool // also run keyward-always-schema
	}
	var inputs []input
	for _, n := range benchSizes {
		for _, indent := range []bool{true, false} {
			layout := "indented"
			if !indent {
				layout = "oneline"
			}
			inputs = append(inputs, input{fmt.Sprintf("statements=%d/layout=%s", n, layout), benchDocument(n, indent), n <= 10000})
		}
	}
	inputs = append(inputs, input{fmt.Sprintf("identities=%d/layout=indented", benchIdentities), identitiesDocument(benchIdentities), false})
	unbounded := parseOptions{unbounded: true}
	for _, in := range inputs {
		data := in.data
		if _, err := parse(data, "", TypeOCI, unbounded); err != nil {
			b.Fatalf("%s: the document is invalid: %v", in.name, err)
		}
		b.Run(in.name+"/impl=keyward", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := parse(data, "", TypeOCI, unbounded); err != nil {
					b.Fatal(err)
				}
			}
		})
		if in.schema {
			b.Run(in.name+"/impl=keyward-always-schema", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					if _, err := parse(data, "", TypeOCI, parseOptions{alwaysSchema: true, unbounded: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(in.name+"/impl=notation-go", func(b *testing.B) {
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

// TestBenchDocumentsFit checks the benchmark's documents: valid, with the
// statements asked for, and within MaxDocumentSize up to 10,000
// statements (Parse reads them as they are).
func TestBenchDocumentsFit(t *testing.T) {
	for _, n := range benchSizes {
		if n > 10000 {
			continue // built and checked by the benchmark itself
		}
		for _, indent := range []bool{true, false} {
			data := benchDocument(n, indent)
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
	doc, err := Parse(identitiesDocument(100), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(doc.Statement("many-signers").TrustedIdentities()); got != 100 {
		t.Errorf("%d identities, want 100", got)
	}
}
