package identity_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"testing"

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/internal/testpki"
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

// FuzzMatch checks that judging identities never panics on hostile leaf
// certificates (any DER x509.ParseCertificate accepts, SANs and Fulcio
// extensions included) and that a certificate matches no identity when
// the list holds no keyward, x509.subject or "*" entry.
func FuzzMatch(f *testing.F) {
	ca := testpki.Root(f, "fuzz-match-root")
	leaf := ca.Leaf(f, "fuzz-match-leaf",
		testpki.WithSAN(testpki.SANURI, "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"),
		testpki.WithSAN(testpki.SANEmail, "a@Example.COM"), testpki.WithSAN(testpki.SANDNS, "X.example."),
		testpki.WithFulcio(1, "https://token.actions.githubusercontent.com"),
		testpki.WithFulcio(8, "https://token.actions.githubusercontent.com"),
		testpki.WithFulcio(20, "push"), testpki.WithPolicies("1.2.3.4"))
	f.Add("keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri~https://github\\.com/.+ fulcio.build-trigger=push", leaf.Cert.Raw)
	f.Add(`keyward: san.email=a@example.com san.dns=x.example policy=1.2.3.4 subject="C=US, ST=WA, O=keyward-test"`, leaf.Cert.Raw)
	f.Add("x509.subject: C=US, ST=WA, O=keyward-test", leaf.Cert.Raw)
	dn := policy.SubjectRules()
	f.Fuzz(func(t *testing.T, id string, der []byte) {
		// der also serves as the raw value of the extensions the matcher
		// reads itself, unchecked by x509.ParseCertificate.
		raw := &x509.Certificate{Extensions: []pkix.Extension{
			{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: der},
			{Id: testpki.FulcioOID(1), Value: der}, {Id: testpki.FulcioOID(8), Value: der},
			{Id: testpki.FulcioOID(20), Value: der},
		}}
		for _, s := range []string{id, "keyward: oidc.issuer=" + string(der) + " san.uri~.* fulcio.build-trigger~.*"} {
			if p, err := identity.Parse(s, dn); err == nil {
				_, _ = p.Match(raw)
			}
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		if identity.Evaluate([]string{"other:" + id, "keywardx:" + id}, cert, dn).OK {
			t.Fatal("a list without an applicable identity matched")
		}
		_ = identity.Evaluate([]string{id}, cert, dn)
		if p, err := identity.Parse(id, dn); err == nil {
			_, _ = p.Match(cert)
		}
	})
}
