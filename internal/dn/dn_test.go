package dn

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	ldap "github.com/go-ldap/ldap/v3"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
)

// dnSeeds are distinguished names from notation-go's tests, the
// specification's examples, and go-ldap's quirks.
var dnSeeds = []string{
	"C=US, ST=WA, O=wabbit-networks.io, OU=org1",
	"C=US,ST=WA,O=  My.  Org",
	`C=US,ST=WA,O=My "special" Org \, \; \\ others`,
	"C=US;ST=WA;O=acme;CN=builder",
	"C=US, S=WA, O=acme",
	"C=US,C=IN", "C=US,ST=WA", "C=US+ST=WA,O=MyOrg", ",,,", "", "   ", "\t",
	"C=US,ST=WA,O=#04024869", "C=US,ST=WA,O=\\41cme", "C=US,ST=WA,O=acme\\ ", "C=US,ST=WA,O=acme\\",
	"C=US,ST=WA,O=ac\\zzme", "C=US,ST=WA,O=a\\4", "C=US,ST=WA,O=\\é1", "=US,ST=WA,O=x", " =a=b,ST=WA,O=x,C=US",
	"C=,C=US,ST=WA,O=acme", "C=US,C=,ST=WA,O=x", "c=US,st=WA,o=x", "C=US,ST=WA,O=x,", "C=US,ST=WA,O=x+", "C",
	"C\\=US=1,ST=WA,O=x,C=US", "C=US,ST=WA,O=a\\\\ ", "C=US,ST=WA,O=a=b=c", "C = US , ST = WA , O = x",
	"CN=Example Corp Root CA,OU=Security,O=Example Corp,L=Seattle,ST=WA,C=US",
	"C=US,ST=WA,O=x,1.2.840.113549.1.9.1=#160161",
}

// ldapSplit is go-ldap v3.4.10's ParseDN in splitRDNs' shape.
func ldapSplit(s string) ([][]Attribute, error) {
	dn, err := ldap.ParseDN(s)
	if err != nil {
		return nil, err
	}
	var out [][]Attribute
	for _, rdn := range dn.RDNs {
		var r []Attribute
		for _, a := range rdn.Attributes {
			r = append(r, Attribute{Type: a.Type, Value: a.Value})
		}
		out = append(out, r)
	}
	return out, nil
}

// notationDNError returns notation-go v1.3.2's verdict on the DN, read
// through trustpolicy.Document.Validate on a one-identity policy.
func notationDNError(dn string) error {
	doc := trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
		Name: "s", RegistryScopes: []string{"registry.example.com/app"},
		SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: "strict"},
		TrustStores:           []string{"ca:acme"}, TrustedIdentities: []string{"x509.subject:" + dn},
	}}}
	return doc.Validate()
}

// checkDNAgainstReferences compares keyward's DN parsing with go-ldap's
// and with notation-go's verdict and message.
func checkDNAgainstReferences(t *testing.T, s string) {
	t.Helper()
	got, gotErr := splitRDNs(s)
	want, wantErr := ldapSplit(s)
	if strings.Contains(s, "=#") {
		// Parse refuses these before splitting, as notation does; go-ldap
		// would decode the BER value.
		got, gotErr, want, wantErr = nil, nil, nil, nil
	}
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("splitRDNs(%q) error %v, go-ldap %v", s, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("splitRDNs(%q) = %q, go-ldap %q", s, got, want)
	}
	if s == "" {
		return // "x509.subject:" is the identity-x509-empty rule, not a DN
	}
	dn, err := Parse(s)
	nerr := notationDNError(s)
	if (err == nil) != (nerr == nil) {
		t.Fatalf("Parse(%q) error %v, notation %v", s, err, nerr)
	}
	if err != nil {
		want := fmt.Sprintf("trust policy: trust policy statement %q has trusted identity %q with invalid identity value: %v", "s", "x509.subject:"+s, err)
		if nerr.Error() != want {
			t.Fatalf("Parse(%q):\nkeyward  %s\nnotation %s", s, want, nerr)
		}
		return
	}
	// A valid DN renders to text that parses back to the same attributes.
	back, err := Parse(dn.String())
	if err != nil || !reflect.DeepEqual(back.values, dn.values) {
		t.Fatalf("Parse(%q).String() = %q, which parses to %v, %v", s, dn.String(), back.values, err)
	}
}

func TestParseMatchesReferences(t *testing.T) {
	for _, s := range dnSeeds {
		t.Run(s, func(t *testing.T) { checkDNAgainstReferences(t, s) })
	}
}

// FuzzParse checks that DN parsing never panics and agrees with go-ldap
// v3.4.10 and notation-go v1.3.2 on every input, and that valid DNs render
// to text that parses back unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range dnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// Policies are valid UTF-8 (the JSON reader refuses the
			// rest); Parse must still not panic.
			_, _ = Parse(s)
			return
		}
		checkDNAgainstReferences(t, s)
	})
}

func TestDNOverlaps(t *testing.T) {
	p := func(s string) DN {
		d, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	base := p("C=US, ST=WA, O=acme")
	cn := p("C=US, ST=WA, O=acme, CN=a")
	ou := p("C=US, ST=WA, O=acme, OU=b")
	other := p("C=US, ST=WA, O=acme, CN=b")
	if !base.SubsetOf(cn) || cn.SubsetOf(base) {
		t.Error("subset")
	}
	if !cn.Overlaps(ou) || cn.SubsetOf(ou) || ou.SubsetOf(cn) {
		t.Error("CN=a and OU=b overlap without a subset")
	}
	if cn.Overlaps(other) {
		t.Error("CN=a and CN=b cannot match one certificate")
	}
}

// TestParseErrorKinds checks the kind and attribute of each refusal, read
// with errors.As as callers read them.
func TestParseErrorKinds(t *testing.T) {
	for _, tc := range []struct {
		dn   string
		kind ErrorKind
		attr string
	}{
		{"C=US,ST=WA,O=#04024869", KindUnsupportedHex, ""},
		{"C=US,ST=WA,O=ac\\zzme", KindSyntax, ""},
		{"C", KindSyntax, ""},
		{"C=US+ST=WA,O=MyOrg", KindMultiValued, ""},
		{"C=US,C=IN,ST=WA,O=x", KindDuplicate, "C"},
		{"C=US,S=WA,ST=OR,O=x", KindDuplicate, "ST"},
		{"C=US,ST=WA", KindMissingMandatory, "O"},
		{"C=US,ST=,O=x", KindMissingMandatory, "ST"},
	} {
		_, err := Parse(tc.dn)
		var e *Error
		if !errors.As(err, &e) || e.Kind != tc.kind || e.Attribute != tc.attr || e.DN != tc.dn {
			t.Errorf("Parse(%q) = %#v, want kind %s attribute %q", tc.dn, err, tc.kind, tc.attr)
		}
		if tc.kind == KindSyntax && errors.Unwrap(err) == nil {
			t.Errorf("Parse(%q): a syntax error wraps go-ldap's reason", tc.dn)
		}
	}
	if _, err := Parse("C=US, ST=WA, O=acme"); err != nil {
		t.Errorf("valid DN: %v", err)
	}
}
