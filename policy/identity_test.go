package policy

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

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
