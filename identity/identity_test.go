package identity_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/identity"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/policy"
)

const (
	ghIssuer  = "https://token.actions.githubusercontent.com"
	ghWorkflw = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	gIssuer   = "https://accounts.google.com"
	policyOID = "1.3.6.1.4.1.99999.1.2"
)

// leaves are the certificates of the identity matrix.
type leaves struct {
	gh, ghV1, email, dns, disagree, badV2, cross, suffix, embedded, prefix, lookalike, upper, plain *x509.Certificate
}

func makeLeaves(t *testing.T) *leaves {
	t.Helper()
	ca := testpki.Root(t, "identity-root")
	fulcioGH := []testpki.Option{
		testpki.WithFulcio(1, ghIssuer), testpki.WithFulcio(8, ghIssuer),
		testpki.WithFulcio(11, "github-hosted"), testpki.WithFulcio(12, "https://github.com/acme/app"),
		testpki.WithFulcio(14, "refs/heads/main"), testpki.WithFulcio(20, "push"),
	}
	leaf := func(cn string, opts ...testpki.Option) *x509.Certificate {
		return ca.Leaf(t, cn, opts...).Cert
	}
	return &leaves{
		gh:   leaf("gh", append([]testpki.Option{testpki.WithSAN(testpki.SANURI, ghWorkflw)}, fulcioGH...)...),
		ghV1: leaf("gh-v1", testpki.WithSAN(testpki.SANURI, ghWorkflw), testpki.WithFulcio(1, ghIssuer)),
		email: leaf("email", testpki.WithSAN(testpki.SANEmail, "Release-Bot@ACME.example"),
			testpki.WithFulcio(8, gIssuer)),
		dns: leaf("dns", testpki.WithSAN(testpki.SANDNS, "Signer.Build.ACME.example.", "*.wild.acme.example"),
			testpki.WithPolicies(policyOID)),
		disagree: leaf("disagree", testpki.WithSAN(testpki.SANURI, ghWorkflw),
			testpki.WithFulcio(8, ghIssuer), testpki.WithFulcio(1, "https://evil.example")),
		badV2: leaf("bad-v2", testpki.WithSAN(testpki.SANURI, ghWorkflw),
			testpki.WithExtension(testpki.FulcioOID(8), false, []byte(ghIssuer))),
		// An e-mail SAN whose text is the workflow URI: a URI identity
		// must not match it (cosign matches every SAN type).
		cross: leaf("cross", testpki.WithSAN(testpki.SANEmail, ghWorkflw), testpki.WithFulcio(8, ghIssuer)),
		suffix: leaf("suffix", testpki.WithSAN(testpki.SANURI, ghWorkflw+"?x="),
			testpki.WithFulcio(8, ghIssuer)),
		embedded: leaf("embedded", testpki.WithSAN(testpki.SANURI, "https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main?u="+ghWorkflw),
			testpki.WithFulcio(8, ghIssuer)),
		prefix: leaf("prefix", testpki.WithSAN(testpki.SANURI, ghWorkflw+"2"),
			testpki.WithFulcio(8, ghIssuer)),
		lookalike: leaf("lookalike", testpki.WithSAN(testpki.SANURI, "https://githubXcom/acme/app/.github/workflows/release.yml@refs/heads/main"),
			testpki.WithFulcio(8, ghIssuer)),
		upper: leaf("upper", testpki.WithSAN(testpki.SANURI, "HTTPS://GitHub.COM/acme/app/.github/workflows/release.yml@refs/heads/main"),
			testpki.WithFulcio(8, ghIssuer)),
		plain: leaf("plain"),
	}
}

func spki(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(s[:])
}

func thumb(c *x509.Certificate) string {
	s := sha256.Sum256(c.Raw)
	return hex.EncodeToString(s[:])
}

func TestMatchMatrix(t *testing.T) {
	l := makeLeaves(t)
	iss := "oidc.issuer=" + ghIssuer + " "
	reWF := `san.uri~https://github\.com/acme/app/\.github/workflows/release\.yml@refs/heads/main`
	cases := []struct {
		name string
		id   string
		leaf *x509.Certificate
		want bool
	}{
		// san.uri =
		{"uri exact", iss + "san.uri=" + ghWorkflw, l.gh, true},
		{"uri exact, issuer in .1.1 only", iss + "san.uri=" + ghWorkflw, l.ghV1, true},
		{"uri exact, other path", iss + "san.uri=https://github.com/acme/app/.github/workflows/other.yml@refs/heads/main", l.gh, false},
		{"uri exact, scheme and host case", iss + "san.uri=HTTPS://GITHUB.com/acme/app/.github/workflows/release.yml@refs/heads/main", l.gh, true},
		{"uri exact, leaf host case", iss + "san.uri=" + ghWorkflw, l.upper, true},
		{"uri exact, path case matters", iss + "san.uri=https://github.com/ACME/app/.github/workflows/release.yml@refs/heads/main", l.gh, false},
		{"uri exact, suffix attack", iss + "san.uri=" + ghWorkflw, l.suffix, false},
		{"uri exact, prefix of SAN", iss + "san.uri=" + ghWorkflw, l.prefix, false},
		{"uri exact, cross-type e-mail SAN", iss + "san.uri=" + ghWorkflw, l.cross, false},
		// san.uri ~
		{"uri regex", iss + reWF, l.gh, true},
		{"uri regex, anchored against ?x= suffix", iss + reWF, l.suffix, false},
		{"uri regex, anchored against embedded identity", iss + reWF, l.embedded, false},
		{"uri regex, anchored against trailing chars", iss + reWF, l.prefix, false},
		{"uri regex, escaped dots refuse lookalike host", iss + reWF, l.lookalike, false},
		{"uri regex, unescaped dot accepts lookalike host", iss + "san.uri~https://github.com/acme/app/.*", l.lookalike, true},
		{"uri regex, cross-type e-mail SAN", iss + reWF, l.cross, false},
		{"uri regex, ^ and $ tolerated", iss + "san.uri~^" + strings.TrimPrefix(reWF, "san.uri~") + "$", l.gh, true},
		{"uri regex, alternation stays anchored", iss + `san.uri~https://github\.com/acme/app/x|https://github\.com/.*`, l.gh, true},
		{"uri regex, alternation anchored both sides", iss + `san.uri~nomatch|https://github\.com/acme`, l.gh, false},
		// san.email
		{"email exact, domain case", "oidc.issuer=" + gIssuer + " san.email=Release-Bot@acme.EXAMPLE", l.email, true},
		{"email exact, local part case", "oidc.issuer=" + gIssuer + " san.email=release-bot@acme.example", l.email, false},
		{"email regex", "oidc.issuer=" + gIssuer + ` san.email~Release-Bot@acme\.example`, l.email, true},
		{"email regex, anchored", "oidc.issuer=" + gIssuer + ` san.email~Release-Bot@acme`, l.email, false},
		{"email on URI leaf", iss + "san.email=" + ghWorkflw, l.gh, false},
		{"email matches cross leaf's e-mail SAN", iss + "san.email=" + ghWorkflw, l.cross, true},
		// san.dns
		{"dns exact, case and trailing dot", "san.dns=signer.build.acme.example", l.dns, true},
		{"dns exact, written with a trailing dot", "san.dns=SIGNER.build.acme.example.", l.dns, true},
		{"dns exact, wildcard not expanded", "san.dns=x.wild.acme.example", l.dns, false},
		{"dns exact, wildcard literal", `san.dns="*.wild.acme.example"`, l.dns, true},
		{"dns exact, other", "san.dns=build.acme.example", l.dns, false},
		{"dns regex needs issuer, with it", "oidc.issuer=x san.dns~signer\\..*", l.dns, false},
		{"dns on a leaf with no SAN", "san.dns=signer.build.acme.example", l.plain, false},
		// oidc.issuer
		{"issuer exact .1.8", "oidc.issuer=" + ghIssuer, l.gh, true},
		{"issuer exact .1.1 only", "oidc.issuer=" + ghIssuer, l.ghV1, true},
		{"issuer other", "oidc.issuer=" + gIssuer, l.gh, false},
		{"issuer trailing slash differs", "oidc.issuer=" + ghIssuer + "/", l.gh, false},
		{"issuer on non-Fulcio leaf", "oidc.issuer=" + ghIssuer, l.dns, false},
		{"issuers disagree (.1.8 value)", "oidc.issuer=" + ghIssuer, l.disagree, false},
		{"issuers disagree (.1.1 value)", "oidc.issuer=https://evil.example", l.disagree, false},
		{"issuer .1.8 not DER", "oidc.issuer=" + ghIssuer, l.badV2, false},
		// a Fulcio leaf matches only identities naming its issuer
		{"Fulcio leaf, issuer-less SAN identity", "san.uri=" + ghWorkflw, l.gh, false},
		{"Fulcio leaf, key pin without issuer", "spki.sha256=" + spki(l.gh), l.gh, false},
		{"Fulcio leaf, key pin with issuer", iss + "spki.sha256=" + spki(l.gh), l.gh, true},
		// fulcio.<name>
		{"fulcio exact", iss + "fulcio.runner-environment=github-hosted", l.gh, true},
		{"fulcio exact, other value", iss + "fulcio.runner-environment=self-hosted", l.gh, false},
		{"fulcio exact, case", iss + "fulcio.build-trigger=PUSH", l.gh, false},
		{"fulcio regex", iss + "fulcio.source-repository-ref~refs/heads/(main|release)", l.gh, true},
		{"fulcio regex, anchored", iss + "fulcio.source-repository-ref~refs/heads/ma", l.gh, false},
		{"fulcio absent extension", iss + "fulcio.deployment-environment=prod", l.gh, false},
		{"fulcio several clauses", iss + "fulcio.source-repository-uri=https://github.com/acme/app fulcio.build-trigger=push " + reWF, l.gh, true},
		{"fulcio several clauses, one fails", iss + "fulcio.source-repository-uri=https://github.com/acme/app fulcio.build-trigger=pull_request", l.gh, false},
		// spki.sha256, cert.sha256
		{"spki pin", "spki.sha256=" + spki(l.dns), l.dns, true},
		{"spki pin, other key", "spki.sha256=" + spki(l.plain), l.dns, false},
		{"cert thumbprint", "cert.sha256=" + thumb(l.dns), l.dns, true},
		{"cert thumbprint upper case", "cert.sha256=" + strings.ToUpper(thumb(l.dns)), l.dns, true},
		{"cert thumbprint, other cert", "cert.sha256=" + thumb(l.plain), l.dns, false},
		// policy
		{"policy", "policy=" + policyOID, l.dns, true},
		{"policy, other OID", "policy=1.3.6.1.4.1.99999.1.3", l.dns, false},
		{"policy, prefix OID", "policy=1.3.6.1.4.1.99999.1", l.dns, false},
		{"policy, none", "policy=" + policyOID, l.plain, false},
		// subject
		{"subject subset", `subject="C=US, ST=WA, O=keyward-test"`, l.plain, true},
		{"subject with CN", `subject="C=US, ST=WA, O=keyward-test, CN=plain"`, l.plain, true},
		{"subject other CN", `subject="C=US, ST=WA, O=keyward-test, CN=dns"`, l.plain, false},
		{"subject and policy ANDed", `policy=` + policyOID + ` subject="C=US, ST=WA, O=keyward-test"`, l.dns, true},
		{"subject and policy ANDed, policy absent", `policy=` + policyOID + ` subject="C=US, ST=WA, O=keyward-test"`, l.plain, false},
		// quoted values
		{"quoted URI", iss + `san.uri="` + ghWorkflw + `"`, l.gh, true},
		{"quoted pattern with \\\\", iss + `san.uri~"https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/heads/main"`, l.gh, true},
		{"tabs between clauses", "oidc.issuer=" + ghIssuer + "\tsan.uri=" + ghWorkflw, l.gh, true},
	}
	dn := policy.SubjectRules()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := identity.Parse("keyward: "+c.id, dn)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got, why := id.Match(c.leaf)
			if got != c.want {
				t.Fatalf("Match = %v (%s), want %v", got, why, c.want)
			}
			if why == "" {
				t.Error("no reason")
			}
			v := identity.Evaluate([]string{"other.plugin:anything", "keyward: " + c.id}, c.leaf, dn)
			if v.OK != c.want || (c.want && v.Matched != "keyward: "+c.id) {
				t.Errorf("Evaluate = %+v, want OK %v", v, c.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		id     string
		kind   identity.ErrorKind
		offset int
		fix    string
	}{
		{"x509.subject: C=US", identity.KindPrefix, 0, "keyward:"},
		{"keyward:", identity.KindEmpty, 8, "add clauses"},
		{"keyward:   ", identity.KindEmpty, 11, "add clauses"},
		{"keyward: san.url=https://x/", identity.KindUnknownKey, 9, "did you mean san.uri?"},
		{"keyward: oidc.issuer=x fulcio.workflow=x", identity.KindUnknownKey, 23, "Fulcio names are build-signer-uri"},
		{"keyward: san.othername=x", identity.KindUnknownKey, 9, "keys are"},
		{"keyward: ext.1.2.3=x", identity.KindUnknownKey, 9, "keys are"},
		{"keyward: SAN.URI=x", identity.KindUnknownKey, 9, "did you mean san.uri?"},
		{"keyward: oidc.issuer~https://.*", identity.KindOperator, 9, "oidc.issuer=<value>"},
		{"keyward: spki.sha256~abc", identity.KindOperator, 9, "spki.sha256=<value>"},
		{"keyward: san.uri https://x/", identity.KindSyntax, 9, "san.uri=<value>"},
		{"keyward: =x", identity.KindSyntax, 9, "start each clause"},
		{"keyward: san.uri=", identity.KindValue, 17, "give san.uri a value"},
		{`keyward: san.uri=""`, identity.KindValue, 17, "give san.uri a value"},
		{`keyward: subject="C=US`, identity.KindSyntax, 17, `end the value`},
		{`keyward: subject="C=US"x`, identity.KindSyntax, 23, "space"},
		{`keyward: subject="a\n"`, identity.KindSyntax, 19, `\\`},
		{"keyward: oidc.issuer=x san.uri~(unclosed", identity.KindValue, 31, "RE2"},
		// Unbalanced parentheses would close the anchoring group early:
		// ^(?:x)|(.*)$ is "^x" or ".*$", which matches any SAN.
		{"keyward: oidc.issuer=x san.uri~x)|(.*", identity.KindValue, 31, "RE2"},
		{"keyward: oidc.issuer=x fulcio.build-trigger~push)|(.*", identity.KindValue, 44, "RE2"},
		{"keyward: oidc.issuer=x san.uri~" + strings.Repeat("a", identity.MaxPatternLen+1), identity.KindTooLong, 31, "shorten"},
		{"keyward: san.uri=" + strings.Repeat("a", identity.MaxIdentityLen), identity.KindTooLong, 0, "split"},
		{"keyward: san.uri~https://github\\.com/.*", identity.KindIssuerRequired, 9, "oidc.issuer="},
		{"keyward: san.email=a@b fulcio.build-trigger=push", identity.KindIssuerRequired, 23, "oidc.issuer="},
		{"keyward: spki.sha256=abc", identity.KindValue, 21, "base64"},
		{"keyward: spki.sha256=" + base64.RawStdEncoding.EncodeToString(make([]byte, 32)), identity.KindValue, 21, "base64"},
		{"keyward: cert.sha256=abc", identity.KindValue, 21, "hex"},
		{"keyward: policy=1", identity.KindValue, 16, "dotted decimal"},
		{"keyward: policy=1.02.3", identity.KindValue, 16, "dotted decimal"},
		{"keyward: policy=3.1", identity.KindValue, 16, "dotted decimal"},
		{"keyward: policy=1.x", identity.KindValue, 16, "dotted decimal"},
		{`keyward: subject="C=US, O=acme"`, identity.KindValue, 17, "C, ST and O"},
		{"keyward: san.dns=a\x01b", identity.KindSyntax, 18, "control"},
	}
	for _, c := range cases {
		t.Run(c.id[:min(len(c.id), 60)], func(t *testing.T) {
			_, err := identity.Parse(c.id, policy.SubjectRules())
			var pe *identity.ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ParseError", err)
			}
			if pe.Kind != c.kind || pe.Offset != c.offset {
				t.Errorf("kind %s offset %d, want %s %d (%v)", pe.Kind, pe.Offset, c.kind, c.offset, err)
			}
			if !strings.Contains(pe.Fix, c.fix) {
				t.Errorf("fix %q does not contain %q", pe.Fix, c.fix)
			}
		})
	}
}

func TestParseClauses(t *testing.T) {
	id, err := identity.Parse(`keyward:   oidc.issuer=https://x  san.uri~"a\"b\\.c" subject="C=US, ST=WA, O=a b"`, policy.SubjectRules())
	if err != nil {
		t.Fatal(err)
	}
	got := id.Clauses()
	want := []struct {
		key    string
		op     identity.Op
		value  string
		offset int
	}{
		{"oidc.issuer", identity.OpExact, "https://x", 11},
		{"san.uri", identity.OpRegex, `a"b\.c`, 34},
		{"subject", identity.OpExact, "C=US, ST=WA, O=a b", 53},
	}
	if len(got) != len(want) {
		t.Fatalf("%d clauses, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Key != w.key || got[i].Op != w.op || got[i].Value != w.value || got[i].Offset != w.offset {
			t.Errorf("clause %d = %+v, want %+v", i, got[i], w)
		}
	}
	if _, err := identity.Parse(`keyward: subject="C=US, ST=WA, O=a"`, nil); err == nil {
		t.Error("a subject clause parsed without DN rules")
	}
}

func TestEvaluate(t *testing.T) {
	l := makeLeaves(t)
	dn := policy.SubjectRules()
	cases := []struct {
		name    string
		ids     []string
		leaf    *x509.Certificate
		ok      bool
		matched string
	}{
		{"wildcard", []string{"*"}, l.plain, true, "*"},
		{"x509.subject", []string{"x509.subject: C=US, ST=WA, O=keyward-test"}, l.plain, true, "x509.subject: C=US, ST=WA, O=keyward-test"},
		{"x509.subject other", []string{"x509.subject: C=US, ST=WA, O=other"}, l.plain, false, ""},
		{"only foreign identities", []string{"arn:aws:signer:x", "com.example:foo"}, l.plain, false, ""},
		{"empty list", nil, l.plain, false, ""},
		{"bad keyward identity never matches", []string{"keyward: unknown=x"}, l.plain, false, ""},
		{"ORed: second matches", []string{"x509.subject: C=US, ST=WA, O=other", "keyward: san.dns=signer.build.acme.example"}, l.dns, true, "keyward: san.dns=signer.build.acme.example"},
		{"Fulcio leaf vs x509.subject keeps notation's rule", []string{"x509.subject: C=US, ST=WA, O=keyward-test"}, l.gh, true, "x509.subject: C=US, ST=WA, O=keyward-test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := identity.Evaluate(c.ids, c.leaf, dn)
			if v.OK != c.ok || v.Matched != c.matched || v.Reason == "" {
				t.Errorf("Evaluate = %+v, want OK %v matched %q", v, c.ok, c.matched)
			}
		})
	}
}

func TestLint(t *testing.T) {
	cases := []struct {
		id    string
		rules []string
	}{
		{"keyward: oidc.issuer=x san.uri~https://github\\.com/acme/app/\\.github/workflows/release\\.yml@.*", nil},
		{"keyward: oidc.issuer=x san.uri~https://github.com/acme/app/x", []string{identity.LintHostNotLiteral}},
		{"keyward: oidc.issuer=x san.uri~https://[a-z]+\\.com/acme", []string{identity.LintHostNotLiteral}},
		{"keyward: oidc.issuer=x san.uri~.*acme", []string{identity.LintHostNotLiteral}},
		{"keyward: oidc.issuer=x san.uri~https://github\\.com/.*", []string{identity.LintAnyPath}},
		{"keyward: oidc.issuer=x san.uri~(?i)https://github\\.com/acme", []string{identity.LintCaseFold, identity.LintHostNotLiteral}},
		{"keyward: oidc.issuer=x fulcio.build-trigger~(?i:push)", []string{identity.LintCaseFold, identity.LintIssuerOnly}},
		{"keyward: san.email=a@b.example", []string{identity.LintNoIssuer}},
		{"keyward: san.dns=a.example policy=1.2.3", []string{identity.LintNoIssuer}},
		{"keyward: spki.sha256=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), nil},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			id, err := identity.Parse(c.id, nil)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range id.Lint() {
				got = append(got, w.Rule)
				if w.Msg == "" || w.Fix == "" {
					t.Errorf("warning without message or fix: %+v", w)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.rules, ",") {
				t.Errorf("rules %v, want %v", got, c.rules)
			}
		})
	}
}

func TestExplain(t *testing.T) {
	id, err := identity.Parse(`keyward: oidc.issuer=https://token.actions.githubusercontent.com san.uri~https://github\.com/acme/.+ fulcio.build-trigger=push policy=1.2.3`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := id.Explain()
	for _, want := range []string{
		`issued for the OIDC issuer "https://token.actions.githubusercontent.com"`,
		`URI subject alternative name matching the whole pattern "https://github\\.com/acme/.+"`,
		`Fulcio build-trigger (extension 1.3.6.1.4.1.57264.1.20) equal to "push"`,
		`carrying the certificate policy 1.2.3`,
		", and ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Explain = %q, lacks %q", got, want)
		}
	}
}

func TestFulcioNames(t *testing.T) {
	names := identity.FulcioNames()
	if len(names) != 16 || names[0] != "build-signer-uri" || names[15] != "token-subject" {
		t.Fatalf("FulcioNames = %v", names)
	}
	for i, n := range names {
		oid, ok := identity.FulcioOID(n)
		if !ok || !oid.Equal(testpki.FulcioOID(9+i)) {
			t.Errorf("%s: OID %v, want .1.%d", n, oid, 9+i)
		}
	}
}

// TestSuggest checks that every suggested identity parses, matches the
// certificate it was made from, and not another one.
func TestSuggest(t *testing.T) {
	l := makeLeaves(t)
	for name, c := range map[string]*x509.Certificate{"gh": l.gh, "email": l.email, "dns": l.dns} {
		t.Run(name, func(t *testing.T) {
			ss := identity.Suggest(c)
			if len(ss) < 3 {
				t.Fatalf("only %d suggestions: %v", len(ss), ss)
			}
			for _, s := range ss {
				id, err := identity.Parse(s.Identity, nil)
				if err != nil {
					t.Fatalf("%q: %v", s.Identity, err)
				}
				if ok, why := id.Match(c); !ok || s.Note == "" {
					t.Errorf("%q does not match its certificate: %s", s.Identity, why)
				}
				if ok, _ := id.Match(l.plain); ok {
					t.Errorf("%q matches another certificate", s.Identity)
				}
			}
		})
	}
	if got := identity.Quote(`a "b" \c`); got != `"a \"b\" \\c"` {
		t.Errorf("Quote = %s", got)
	}
	if got := identity.Quote("https://x/y"); got != "https://x/y" {
		t.Errorf("Quote = %s", got)
	}
}

// TestEvaluatorConcurrent shares one Evaluator between goroutines (run
// with -race) and checks that cached identities give the verdicts of
// fresh ones.
func TestEvaluatorConcurrent(t *testing.T) {
	l := makeLeaves(t)
	ev := identity.NewEvaluator(policy.SubjectRules())
	ids := []string{"keyward: bogus=1", "x509.subject: C=US, ST=WA, O=other", "keyward: oidc.issuer=" + ghIssuer + " san.uri=" + ghWorkflw}
	done := make(chan identity.Verdict, 16)
	for i := 0; i < 16; i++ {
		go func(i int) {
			leaf := l.gh
			if i%2 == 1 {
				leaf = l.plain
			}
			done <- ev.Evaluate(ids, leaf)
		}(i)
	}
	ok := 0
	for i := 0; i < 16; i++ {
		if v := <-done; v.OK {
			ok++
			if v.Matched != ids[2] {
				t.Errorf("matched %q", v.Matched)
			}
		}
	}
	if ok != 8 {
		t.Errorf("%d of 16 matched, want 8", ok)
	}
	if v, w := ev.Evaluate(ids, l.gh), identity.Evaluate(ids, l.gh, policy.SubjectRules()); v != w {
		t.Errorf("cached %+v, fresh %+v", v, w)
	}
}
