package policy

import (
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testpki"
)

// TestKeywardIdentitiesValidate checks that valid keyward: identities pass
// validation and the schema (run on every document here), alongside
// x509.subject and other plugins' identities.
func TestKeywardIdentitiesValidate(t *testing.T) {
	src := oci(stmt("a", "trustedIdentities", `[
      "x509.subject: C=US, ST=WA, O=acme",
      "keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri~https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v[0-9]+",
      "keyward: policy=1.3.6.1.4.1.99999.1.2 subject=\"C=US, ST=WA, O=keyward-test\"",
      "com.example.other: anything at all"]`))
	doc, err := parse([]byte(src), "p.json", TypeOCI, parseOptions{alwaysSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	ids := doc.Statement("a").TrustedIdentities()
	if !ids[1].IsKeyward() || !ids[2].IsKeyward() || ids[0].IsKeyward() || ids[3].IsKeyward() {
		t.Errorf("IsKeyward wrong: %v", ids)
	}
	kid, err := ids[2].Keyward()
	if err != nil || len(kid.Clauses()) != 2 {
		t.Fatalf("Keyward() = %v, %v", kid, err)
	}
	leaf := testpki.Root(t, "kw-root").Leaf(t, "kw-leaf", testpki.WithPolicies("1.3.6.1.4.1.99999.1.2"))
	if ok, why := kid.Match(leaf.Cert); !ok {
		t.Errorf("Match = false: %s", why)
	}
}

// TestKeywardExplain renders keyward identities in words and leaves other
// plugin identities as they were.
func TestKeywardExplain(t *testing.T) {
	doc, err := Parse([]byte(oci(stmt("a", "trustedIdentities", `["keyward: oidc.issuer=https://accounts.google.com san.email=bot@acme.example", "com.example:x"]`))), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	ids := doc.Statement("a").TrustedIdentities()
	kw, other := identityInfo(ids[0]), identityInfo(ids[1])
	if kw.Kind != "keyward" || !strings.Contains(kw.Meaning, `issued for the OIDC issuer "https://accounts.google.com"`) ||
		!strings.Contains(kw.Meaning, `e-mail subject alternative name equal to "bot@acme.example"`) {
		t.Errorf("keyward identity explained as %+v", kw)
	}
	if other.Kind != "plugin" {
		t.Errorf("other plugin identity explained as %+v", other)
	}
}

// TestKeywardLint checks the keyward lint findings and that each points at
// the clause inside the identity string.
func TestKeywardLint(t *testing.T) {
	src := oci(stmt("a", "trustedIdentities", `[
      "keyward: oidc.issuer=i san.uri~https://github.com/acme/.+",
      "keyward: oidc.issuer=i san.uri~https://github\\.com/.*",
      "keyward: oidc.issuer=i fulcio.build-trigger~(?i)push",
      "keyward: san.email=bot@acme.example",
      "keyward: spki.sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]`))
	doc, err := Parse([]byte(src), "p.json", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	wants := []struct{ rule, ptr, at string }{
		{LintKeywardHostPattern, "/trustPolicies/0/trustedIdentities/0", `san.uri~https://github.com`},
		{LintKeywardAnyPath, "/trustPolicies/0/trustedIdentities/1", `san.uri~https://github\\.com/.*`},
		{LintKeywardIssuerOnly, "/trustPolicies/0/trustedIdentities/2", `keyward: oidc.issuer=i fulcio`},
		{LintKeywardCaseFold, "/trustPolicies/0/trustedIdentities/2", `fulcio.build-trigger~`},
		{LintKeywardNoIssuer, "/trustPolicies/0/trustedIdentities/3", `keyward: san.email`},
	}
	var got []Problem
	for _, f := range Lint(doc, LintOptions{}) {
		if strings.HasPrefix(f.Rule, "lint-keyward-") {
			got = append(got, f)
		}
	}
	if len(got) != len(wants) {
		t.Fatalf("findings %v, want %d", got, len(wants))
	}
	for i, w := range wants {
		f := got[i]
		line, col := position(t, src, w.at, 0)
		if f.Rule != w.rule || f.Pointer != w.ptr || f.Line != line || f.Column != col || f.Severity != SeverityWarning || f.Fix == "" {
			t.Errorf("finding %d = %s %s %d:%d, want %s %s %d:%d", i, f.Rule, f.Pointer, f.Line, f.Column, w.rule, w.ptr, line, col)
		}
	}
}
