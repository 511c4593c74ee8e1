package policy

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
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
		// ParseDN refuses these before splitting, as notation does; go-ldap
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
	dn, err := ParseDN(s)
	nerr := notationDNError(s)
	if (err == nil) != (nerr == nil) {
		t.Fatalf("ParseDN(%q) error %v, notation %v", s, err, nerr)
	}
	if err != nil {
		want := fmt.Sprintf("trust policy: trust policy statement %q has trusted identity %q with invalid identity value: %v", "s", "x509.subject:"+s, err)
		if nerr.Error() != want {
			t.Fatalf("ParseDN(%q):\nkeyward  %s\nnotation %s", s, want, nerr)
		}
		return
	}
	// A valid DN renders to text that parses back to the same attributes.
	back, err := ParseDN(dn.String())
	if err != nil || !reflect.DeepEqual(back.values, dn.values) {
		t.Fatalf("ParseDN(%q).String() = %q, which parses to %v, %v", s, dn.String(), back.values, err)
	}
}

func TestParseDNMatchesReferences(t *testing.T) {
	for _, s := range dnSeeds {
		t.Run(s, func(t *testing.T) { checkDNAgainstReferences(t, s) })
	}
}

// FuzzParseDN checks that DN parsing never panics and agrees with go-ldap
// v3.4.10 and notation-go v1.3.2 on every input, and that valid DNs render
// to text that parses back unchanged.
func FuzzParseDN(f *testing.F) {
	for _, s := range dnSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			// Policies are valid UTF-8 (the JSON reader refuses the
			// rest); ParseDN must still not panic.
			_, _ = ParseDN(s)
			return
		}
		checkDNAgainstReferences(t, s)
	})
}

func TestDNOverlaps(t *testing.T) {
	p := func(s string) DN {
		d, err := ParseDN(s)
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

func mustCert(name pkix.Name) *x509.Certificate { return &x509.Certificate{Subject: name} }

// TestIdentityMatchesLeafSubjects checks matching against subjects as Go
// renders them, including the subjects notation cannot parse.
func TestIdentityMatchesLeafSubjects(t *testing.T) {
	doc, err := Parse([]byte(oci(stmt("a", "trustedIdentities", `["x509.subject: C=US, ST=WA, O=acme, OU=build", "x509.subject: C=US, S=WA, O=wabbit"]`))), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	s := doc.Statement("a")
	ids := s.TrustedIdentities()
	name := func(ou ...string) pkix.Name {
		return pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"acme"}, OrganizationalUnit: ou, CommonName: "signer"}
	}
	email := name("build")
	email.ExtraNames = []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "a@example.com"}}
	noST := name("build")
	noST.Province = nil
	tests := []struct {
		subject pkix.Name
		match   bool
		errPart string
	}{
		{name("build"), true, ""},
		{name("test"), false, "does not match the X.509 trusted identities"},
		{pkix.Name{Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"wabbit"}}, true, ""},
		{name("build", "extra"), false, "multi-valued RDN attributes"},
		{email, false, `notation does not support x509.subject identities containing \"=#\"`},
		{noST, false, `has no mandatory RDN attribute for \"ST\"`},
	}
	for _, tt := range tests {
		t.Run(tt.subject.String(), func(t *testing.T) {
			got, err := ids[0].Matches(tt.subject)
			if got2, _ := ids[1].Matches(tt.subject); got2 {
				got = true
			}
			if tt.errPart == "" && (err != nil || got != tt.match) {
				t.Errorf("Matches = %v, %v; want %v", got, err, tt.match)
			}
			verr := s.VerifyIdentity(mustCert(tt.subject))
			if tt.match != (verr == nil) {
				t.Errorf("VerifyIdentity = %v", verr)
			}
			if tt.errPart != "" && (verr == nil || !strings.Contains(verr.Error(), tt.errPart)) {
				t.Errorf("VerifyIdentity = %v, want %q", verr, tt.errPart)
			}
		})
	}
	var se *SubjectError
	if err := s.VerifyIdentity(mustCert(noST)); !errors.As(err, &se) ||
		!strings.HasPrefix(err.Error(), "error while parsing the certificate subject from the digital signature. error : ") {
		t.Errorf("unparsable subject: %v", err)
	}
	err = s.VerifyIdentity(mustCert(name("test")))
	want := `signing certificate from the digital signature does not match the X.509 trusted identities [map["C":"US" "O":"acme" "OU":"build" "ST":"WA"] map["C":"US" "O":"wabbit" "ST":"WA"]] defined in the trust policy "a"`
	if err == nil || err.Error() != want {
		t.Errorf("mismatch message:\n got %v\nwant %s", err, want)
	}
}

func TestVerifyIdentityWildcardAndPlugins(t *testing.T) {
	doc, err := Parse([]byte(oci(stmt("any", "trustedIdentities", `["*"]`), stmt("plugin", "trustedIdentities", `["com.example:team"]`))), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	leaf := mustCert(pkix.Name{CommonName: "no mandatory attributes"})
	if err := doc.Statement("any").VerifyIdentity(leaf); err != nil {
		t.Errorf("wildcard: %v", err)
	}
	if err := doc.Statement("plugin").VerifyIdentity(leaf); err == nil || err.Error() != `no x509 trusted identities are configured in the trust policy "plugin"` {
		t.Errorf("plugin identities: %v", err)
	}
	if ok, err := doc.Statement("plugin").TrustedIdentities()[0].Matches(leaf.Subject); ok || err != nil {
		t.Errorf("a plugin identity matched: %v %v", ok, err)
	}
	b, _ := json.Marshal(doc.Statement("plugin").TrustedIdentities()[0].Prefix())
	if string(b) != `"com.example"` {
		t.Errorf("prefix %s", b)
	}
}
