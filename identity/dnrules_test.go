package identity_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/policy"
)

// TestNotationDNMatchesPolicy holds the plugin's DN rules (which avoid the
// policy package) to the policy package's x509.subject matching.
func TestNotationDNMatchesPolicy(t *testing.T) {
	leaves := []pkix.Name{
		{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"acme"}, CommonName: "signer"},
		{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"acme"}, OrganizationalUnit: []string{"a", "b"}},
		{Country: []string{"US"}, Organization: []string{"acme"}},
		{Country: []string{"DE"}, Province: []string{"BY"}, Organization: []string{"other, inc."}, CommonName: "x+y"},
	}
	values := []string{"C=US, ST=WA, O=acme", "C=US, ST=WA, O=acme, CN=signer", "C=US, ST=WA, O=acme, CN=other", `C=DE, ST=BY, O=other\, inc., CN=x\+y`, "O=acme"}
	for _, v := range values {
		a, aerr := identity.NotationDN().ParseDN(v)
		b, berr := policy.SubjectRules().ParseDN(v)
		if (aerr == nil) != (berr == nil) {
			t.Fatalf("ParseDN(%q): %v vs %v", v, aerr, berr)
		}
		if aerr != nil {
			continue
		}
		for _, leaf := range leaves {
			cert := &x509.Certificate{Subject: leaf}
			am, aerr := a.MatchSubject(cert)
			bm, berr := b.MatchSubject(cert)
			if am != bm || (aerr == nil) != (berr == nil) {
				t.Errorf("%q on %q: %v %v vs %v %v", v, leaf.String(), am, aerr, bm, berr)
			}
		}
	}
}
