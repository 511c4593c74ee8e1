package identity_test

import (
	"errors"
	"testing"

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/policy"
)

// FuzzParse checks that Parse never panics, that every error is a
// *ParseError pointing inside the identity, and that what parses renders
// and lints.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri~https://github\\.com/acme/.+",
		`keyward: subject="C=US, ST=WA, O=a \"b\" \\"`,
		"keyward: policy=1.2.3 spki.sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"keyward: cert.sha256=00 fulcio.build-trigger=push",
		`keyward: san.uri="`,
		"keyward:",
	} {
		f.Add(s)
	}
	dn := policy.SubjectRules()
	f.Fuzz(func(t *testing.T, s string) {
		id, err := identity.Parse(s, dn)
		if err != nil {
			var pe *identity.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.Offset < 0 || pe.Offset > len(s) || pe.Fix == "" {
				t.Fatalf("bad ParseError %+v", pe)
			}
			return
		}
		if len(id.Clauses()) == 0 {
			t.Fatal("an identity without clauses parsed")
		}
		_ = id.Explain()
		for _, w := range id.Lint() {
			if w.Offset < 0 || w.Offset > len(s) {
				t.Fatalf("bad warning offset %+v", w)
			}
		}
	})
}
