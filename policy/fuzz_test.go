package policy

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/jsonpos"
)

func addCorpusSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "differential", "*.json"))
	more, _ := filepath.Glob(filepath.Join("..", "examples", "*", "trustpolicy*.json"))
	for _, p := range append(files, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

// FuzzLoad checks document loading: it never panics; a document that
// validates re-encodes (MarshalJSON) to a document that validates to the
// same result; keyward never accepts an OCI document notation-go v1.3.2
// rejects, reports notation's message when both reject, and rejects a
// document notation accepts only with a rule where it is deliberately
// stricter.
func FuzzLoad(f *testing.F) {
	addCorpusSeeds(f)
	stricter := map[string]bool{RuleUnknownProperty: true, RuleDuplicateKey: true, RuleJSONSyntax: true, RuleSchemaType: true, RuleGlobalSkip: true, RuleIdentityKeyward: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, typ := range []DocumentType{TypeOCI, TypeBlob, TypeAuto} {
			doc, err := Parse(data, "fuzz.json", typ)
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Problems) == 0 {
					t.Fatalf("%v: error %v is not a ValidationError with problems", typ, err)
				}
				for _, p := range ve.Problems {
					if p.Message == "" || p.Rule == "" || p.Severity != SeverityError || p.Line < 0 || p.Column < 0 {
						t.Fatalf("malformed problem %+v", p)
					}
				}
			} else {
				checkRoundTrip(t, doc)
				checkSchemaAccepts(t, data, doc.Type())
			}
			if typ != TypeOCI || !utf8.Valid(data) {
				continue
			}
			decErr, valErr := notationVerdict(data)
			notationOK := decErr == nil && valErr == nil
			switch {
			case err == nil && !notationOK:
				t.Fatalf("keyward accepts what notation rejects: %v %v", decErr, valErr)
			case err != nil && valErr != nil:
				want := strings.TrimPrefix(valErr.Error(), "trust policy: ")
				found := false
				for _, p := range err.(*ValidationError).Problems {
					found = found || p.Message == want
				}
				if !found {
					t.Fatalf("notation says %q; keyward says %v", want, err)
				}
			case err != nil && notationOK:
				// A stricter rule must be among the problems (others may
				// follow from it: "Version" leaves "version" missing).
				found := false
				for _, p := range err.(*ValidationError).Problems {
					found = found || stricter[p.Rule]
				}
				if !found {
					t.Fatalf("notation accepts; keyward rejects without a stricter rule: %v", err)
				}
			}
		}
	})
}

// checkSchemaAccepts asserts that the JSON Schema accepts a document
// keyward accepted (keyward runs the schema validator only on documents
// with problems or a deviating structure).
func checkSchemaAccepts(t *testing.T, data []byte, typ DocumentType) {
	t.Helper()
	cs, err := loadSchema()
	if err != nil {
		t.Fatal(err)
	}
	root, _ := jsonpos.Parse(data)
	s := cs.oci
	if typ == TypeBlob {
		s = cs.blob
	}
	if err := s.Validate(root.ToAny()); err != nil {
		t.Fatalf("keyward accepts a document the schema rejects: %v", err)
	}
}

func checkRoundTrip(t *testing.T, doc *Document) {
	t.Helper()
	out, err := doc.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	again, err := Parse(out, "", doc.Type())
	if err != nil {
		t.Fatalf("the re-encoded document is invalid: %v\n%s", err, out)
	}
	out2, err := again.MarshalJSON()
	if err != nil || !bytes.Equal(out, out2) {
		t.Fatalf("re-encoding is not stable:\n%s\n%s", out, out2)
	}
	a, b := doc.Statements(), again.Statements()
	if len(a) != len(b) {
		t.Fatalf("%d statements, then %d", len(a), len(b))
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.Name() != y.Name() || !reflect.DeepEqual(x.Actions(), y.Actions()) || !reflect.DeepEqual(x.TrustStores(), y.TrustStores()) ||
			!reflect.DeepEqual(x.RegistryScopes(), y.RegistryScopes()) || x.VerifyTimestamp() != y.VerifyTimestamp() ||
			x.GlobalPolicy() != y.GlobalPolicy() || len(x.TrustedIdentities()) != len(y.TrustedIdentities()) {
			t.Fatalf("statement %d differs after re-encoding", i)
		}
	}
}

func TestRoundTripCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "differential", "*valid-*.json"))
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		typ := TypeOCI
		if strings.HasPrefix(filepath.Base(p), "blob-") {
			typ = TypeBlob
		}
		doc, err := Parse(data, p, typ)
		if strings.Contains(p, "invalid") {
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		checkRoundTrip(t, doc)
	}
}
