package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"
)

// stricterCases are the documents notation-go v1.3.2 accepts and keyward
// rejects on purpose, each with the rule keyward reports. The README's
// "keyward is stricter than notation" section lists the same cases.
var stricterCases = map[string]string{
	"stricter-unknown-property-top":                       RuleUnknownProperty,
	"stricter-unknown-property-statement":                 RuleUnknownProperty,
	"stricter-unknown-property-misspelt-verify-timestamp": RuleUnknownProperty,
	"stricter-case-variant-key":                           RuleUnknownProperty, // encoding/json matches keys case-insensitively
	"stricter-duplicate-key":                              RuleDuplicateKey,
	"stricter-trailing-data":                              RuleJSONSyntax, // json.Decoder reads the first value only
	"stricter-invalid-utf8":                               RuleJSONSyntax, // encoding/json replaces it with U+FFFD
	"stricter-null-override":                              RuleSchemaType,
	"stricter-null-stores-on-skip":                        RuleSchemaType,
	"stricter-global-policy-in-oci":                       RuleUnknownProperty,
	"stricter-keyward-identity":                           RuleIdentityKeyward, // notation leaves other prefixes to plugins; keyward owns this one
	"blob-stricter-global-skip":                           RuleGlobalSkip,      // the spec forbids it; notation-go main's check is dead code
	"blob-stricter-registry-scopes":                       RuleUnknownProperty,
}

// blobOnlyCases break a blob rule that notation-go v1.3.2 (which has no blob
// policy) cannot check; keyward follows notation-go main's BlobDocument.
var blobOnlyCases = map[string]string{
	"blob-invalid-global-duplicate": RuleGlobalDuplicate,
}

// notationVerdict reads a document as notation v1.3.2 does (json.Decoder
// into trustpolicy.Document, then Validate) and returns its error.
func notationVerdict(data []byte) (decodeErr, validateErr error) {
	var doc trustpolicy.Document
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		return err, nil
	}
	return nil, doc.Validate()
}

// asOCIForNotation rewrites a blob document so that notation-go v1.3.2 can
// check the rules blob and OCI statements share (validatePolicyCore): each
// statement gets a registry scope of its own and loses globalPolicy.
func asOCIForNotation(t *testing.T, data []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		return data
	}
	tps, ok := m["trustPolicies"].([]any)
	if !ok {
		return data
	}
	for i, s := range tps {
		if o, ok := s.(map[string]any); ok {
			delete(o, "globalPolicy")
			if _, has := o["registryScopes"]; !has {
				o["registryScopes"] = []any{fmt.Sprintf("blob.keyward.test/statement%d", i)}
			}
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// blobWording maps notation-go v1.3.2's OCI wording to notation-go main's
// blob wording for the document-level messages.
func blobWording(msg string) string {
	msg = strings.TrimPrefix(msg, "trust policy: ")
	for _, p := range []string{"trust policy document ", "multiple trust policy statements "} {
		if strings.HasPrefix(msg, p) {
			return strings.Replace(msg, "trust policy", "blob trust policy", 1)
		}
	}
	return msg
}

// TestDifferentialNotation runs every document of testdata/differential
// through notation-go v1.3.2's trustpolicy.Document.Validate in-process and
// through keyward: the verdicts must agree, and when notation rejects a
// document keyward must report notation's message among its problems.
// The only exceptions are the cases listed in stricterCases and
// blobOnlyCases, where keyward must report the listed rule.
func TestDifferentialNotation(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "differential", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 60 {
		t.Fatalf("only %d differential cases; the corpus must hold at least 60", len(files))
	}
	seen := map[string]bool{}
	counts := map[string]int{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			typ := TypeOCI
			ndata := data
			if strings.HasPrefix(name, "blob-") {
				typ = TypeBlob
				ndata = asOCIForNotation(t, data)
			}
			decErr, valErr := notationVerdict(ndata)
			notationOK := decErr == nil && valErr == nil

			_, kerr := Parse(data, name+".json", typ)
			var problems []Problem
			if kerr != nil {
				ve, ok := kerr.(*ValidationError)
				if !ok {
					t.Fatalf("keyward: %v (want a *ValidationError)", kerr)
				}
				problems = ve.Problems
			}
			keywardOK := kerr == nil

			if rule, ok := stricterCases[name]; ok {
				counts["stricter"]++
				if !notationOK {
					t.Fatalf("listed as keyward-stricter, but notation rejects it too: %v %v", decErr, valErr)
				}
				requireRule(t, problems, rule)
				return
			}
			if rule, ok := blobOnlyCases[name]; ok {
				counts["blob-only"]++
				requireRule(t, problems, rule)
				return
			}
			if notationOK != keywardOK {
				t.Fatalf("verdicts differ: notation valid=%v (%v %v), keyward valid=%v (%v)", notationOK, decErr, valErr, keywardOK, kerr)
			}
			if strings.HasPrefix(name, "valid-") || strings.HasPrefix(name, "blob-valid-") {
				if !keywardOK {
					t.Fatalf("a valid- case is invalid: %v", kerr)
				}
				checkSchemaAccepts(t, data, typ)
				counts["valid"]++
				return
			}
			counts["invalid"]++
			if keywardOK {
				t.Fatal("an invalid- case is valid")
			}
			if valErr != nil {
				want := valErr.Error()
				if typ == TypeBlob {
					want = blobWording(want)
				} else {
					want = strings.TrimPrefix(want, "trust policy: ")
				}
				var got []string
				for _, p := range problems {
					if p.Message == want {
						return
					}
					got = append(got, p.Message)
				}
				t.Fatalf("notation says\n  %s\nkeyward says\n  %s", want, strings.Join(got, "\n  "))
			}
		})
	}
	for _, m := range []map[string]string{stricterCases, blobOnlyCases} {
		var missing []string
		for name := range m {
			if !seen[name] {
				missing = append(missing, name)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			t.Errorf("listed cases without a file: %v", missing)
		}
	}
	t.Logf("cases: %v", counts)
}

func requireRule(t *testing.T, problems []Problem, rule string) {
	t.Helper()
	for _, p := range problems {
		if p.Rule == rule {
			return
		}
	}
	t.Fatalf("keyward did not report rule %s; problems: %v", rule, problems)
}
