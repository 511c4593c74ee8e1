package policy

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/truststore"
)

// TestLintFindings lints a policy with one risky setting per statement
// against a trust store with expired, intermediate, non-CA, empty and
// missing stores, and checks every finding's rule, severity and place.
func TestLintFindings(t *testing.T) {
	now := time.Now()
	ts := truststore.New(t.TempDir())
	root := testpki.Root(t, "lint-root", testpki.WithValidity(now.Add(-time.Hour), now.Add(10*365*24*time.Hour)))
	expired := testpki.Root(t, "lint-expired", testpki.WithValidity(now.Add(-48*time.Hour), now.Add(-time.Hour)))
	soon := testpki.Root(t, "lint-soon", testpki.WithValidity(now.Add(-time.Hour), now.Add(5*24*time.Hour)))
	inter := root.Intermediate(t, "lint-intermediate", testpki.WithValidity(now.Add(-time.Hour), now.Add(365*24*time.Hour)))
	self := testpki.SelfSignedLeaf(t, "lint-self", testpki.WithValidity(now.Add(-time.Hour), now.Add(365*24*time.Hour)))
	put := func(ref string, certs ...*testpki.Cert) {
		r, err := truststore.ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(ts.Path(r), "certs.pem"), testpki.CertsPEM(testpki.Chain(certs...)...))
	}
	put("ca:good", root)
	put("ca:old", expired, soon)
	put("ca:inter", inter)
	put("ca:pinned", self)
	put("tsa:tsa", root)
	mkdir(t, ts.Path(truststore.Ref{Type: truststore.TypeCA, Name: "empty"}))

	const dn = `"x509.subject: C=US, ST=WA, O=acme, CN=builder"`
	src := oci(
		stmt("wild", "trustStores", `["ca:good"]`, "trustedIdentities", `["*"]`),                                                                                                                                // 0
		stmt("global", "registryScopes", `["*"]`, "signatureVerification", `{"level": "audit"}`, "trustStores", `["ca:good"]`, "trustedIdentities", `[`+dn+`]`),                                                 // 1
		stmt("down", "signatureVerification", `{"level": "strict", "override": {"authenticity": "log", "revocation": "skip", "expiry": "log"}}`, "trustStores", `["ca:good"]`, "trustedIdentities", `[`+dn+`]`), // 2
		stmt("tsaonly", "trustStores", `["signingAuthority:good", "tsa:tsa"]`, "trustedIdentities", `[`+dn+`]`),                                                                                                 // 3
		stmt("vts", "signatureVerification", `{"level": "strict", "verifyTimestamp": "always"}`, "trustStores", `["ca:good"]`, "trustedIdentities", `[`+dn+`]`),                                                 // 4
		stmt("stores", "trustStores", `["ca:missing", "ca:empty", "ca:old", "ca:inter", "ca:pinned"]`, "trustedIdentities", `[`+dn+`]`),                                                                         // 5
		stmt("broad", "trustStores", `["ca:good"]`, "trustedIdentities", `["x509.subject: C=US, ST=WA, O=acme", "x509.subject: C=US, ST=CA, O=other, CN=x"]`),                                                   // 6
		stmt("overlap", "trustStores", `["ca:good"]`, "trustedIdentities", `["x509.subject: C=US, ST=WA, O=acme, CN=a", "x509.subject: C=US, ST=WA, O=acme, OU=b"]`),                                            // 7
		stmt("skipper", "signatureVerification", `{"level": "skip"}`, "trustStores", "", "trustedIdentities", ""),                                                                                               // 8
		stmt("plugin", "trustStores", `["ca:good"]`, "trustedIdentities", `["com.example:x"]`),                                                                                                                  // 9
	)
	doc, err := Parse([]byte(src), "lint.json", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	findings := Lint(doc, LintOptions{TrustStore: ts, Now: now})
	type want struct {
		rule string
		sev  Severity
		ptr  string
		msg  string
	}
	wants := []want{
		{LintWildcardIdentity, SeverityWarning, "/trustPolicies/0/trustedIdentities/0", "trusts any identity"},
		{LintGlobalAudit, SeverityWarning, "/trustPolicies/1/signatureVerification", "only logs authenticity failures"},
		{LintOverrideDowngrade, SeverityWarning, "/trustPolicies/2/signatureVerification/override/authenticity", "weakens authenticity from enforce (level strict) to log"},
		{LintOverrideDowngrade, SeverityWarning, "/trustPolicies/2/signatureVerification/override/revocation", "a revoked signing certificate is accepted"},
		{LintOverrideDowngrade, SeverityInfo, "/trustPolicies/2/signatureVerification/override/expiry", "weakens expiry"},
		{LintTSAUnused, SeverityWarning, "/trustPolicies/3/trustStores", "tsa: store but no ca: store"},
		{LintStoreMissing, SeverityError, "/trustPolicies/3/trustStores/0", `the trust store "good" of type "signingAuthority" does not exist`},
		{LintTimestampNoTSA, SeverityWarning, "/trustPolicies/4/signatureVerification/verifyTimestamp", `verifyTimestamp is "always"`},
		{LintStoreMissing, SeverityError, "/trustPolicies/5/trustStores/0", `the trust store "missing" of type "ca" does not exist`},
		{LintStoreEmpty, SeverityError, "/trustPolicies/5/trustStores/1", "no x509 certificates were found"},
		{LintStoreExpired, SeverityWarning, "/trustPolicies/5/trustStores/2", "CN=lint-expired"},
		{LintStoreExpiring, SeverityInfo, "/trustPolicies/5/trustStores/2", "CN=lint-soon"},
		{LintStoreIntermediate, SeverityInfo, "/trustPolicies/5/trustStores/3", "intermediate CA"},
		{LintStoreNonCA, SeverityWarning, "/trustPolicies/5/trustStores/4", "is not a CA"},
		{LintBroadIdentity, SeverityWarning, "/trustPolicies/6/trustedIdentities/0", "names only C, ST and O"},
		{LintIdentityOverlap, SeverityWarning, "/trustPolicies/7/trustedIdentities/1", "a certificate whose subject has C=US, ST=WA, O=acme, CN=a, OU=b matches both"},
		{LintSkipScope, SeverityInfo, "/trustPolicies/8/signatureVerification/level", "without verifying any signature"},
		{LintPluginIdentityOnly, SeverityInfo, "/trustPolicies/9/trustedIdentities", "no x509.subject identity"},
		{LintNoSigningStore, SeverityError, "", ""}, // checked below: not expected here
	}
	wants = wants[:len(wants)-1]
	used := make([]bool, len(findings))
	for _, w := range wants {
		found := false
		for i, f := range findings {
			if !used[i] && f.Rule == w.rule && f.Severity == w.sev && f.Pointer == w.ptr && strings.Contains(f.Message, w.msg) {
				used[i], found = true, true
				line, col := doc.Position(w.ptr)
				if f.Line != line || f.Column != col || f.Fix == "" || f.File != "lint.json" || f.Statement == "" {
					t.Errorf("%s at %d:%d (want %d:%d), fix %q, file %q, statement %q", w.rule, f.Line, f.Column, line, col, f.Fix, f.File, f.Statement)
				}
			}
		}
		if !found {
			t.Errorf("missing finding %s %s at %s (%q)", w.sev, w.rule, w.ptr, w.msg)
		}
	}
	for i, f := range findings {
		if !used[i] {
			t.Errorf("unexpected finding: %s", f)
		}
	}
	covered := map[string]bool{LintNoSigningStore: true, LintGlobalSkip: true, LintStoreUnusable: true,
		// keyward_test.go: TestKeywardLint
		LintKeywardHostPattern: true, LintKeywardAnyPath: true, LintKeywardCaseFold: true, LintKeywardNoIssuer: true, LintKeywardIssuerOnly: true}
	for _, w := range wants {
		covered[w.rule] = true
	}
	for _, r := range LintRules() {
		if !covered[r.ID] {
			t.Errorf("lint rule %s has no test", r.ID)
		}
	}
}

func TestLintGlobalSkipAndNoSigningStore(t *testing.T) {
	ts := truststore.New(t.TempDir())
	root := testpki.Root(t, "lint-tsa-root")
	writeFile(t, filepath.Join(ts.Path(truststore.Ref{Type: truststore.TypeTSA, Name: "t"}), "r.pem"), testpki.CertsPEM(root.Cert))
	writeFile(t, filepath.Join(ts.Path(truststore.Ref{Type: truststore.TypeCA, Name: "link"}), "sub", "r.pem"), testpki.CertsPEM(root.Cert))
	doc, err := Parse([]byte(oci(
		stmt("skip-all", "registryScopes", `["*"]`, "signatureVerification", `{"level": "skip"}`, "trustStores", "", "trustedIdentities", ""),
		stmt("tsa", "trustStores", `["tsa:t"]`),
		stmt("bad-store", "trustStores", `["ca:link"]`),
	)), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	rules := map[string]string{}
	for _, f := range Lint(doc, LintOptions{TrustStore: ts}) {
		rules[f.Rule] = f.Pointer
	}
	for rule, ptr := range map[string]string{
		LintGlobalSkip:     "/trustPolicies/0/signatureVerification/level",
		LintNoSigningStore: "/trustPolicies/1/trustStores",
		LintStoreUnusable:  "/trustPolicies/2/trustStores/0",
	} {
		if rules[rule] != ptr {
			t.Errorf("%s at %q, want %q (all: %v)", rule, rules[rule], ptr, rules)
		}
	}
	if ps := CheckTrustStores(doc, ts); len(ps) != 1 || ps[0].Rule != RuleStoreUnusable || ps[0].Pointer != "/trustPolicies/2/trustStores/0" ||
		!strings.Contains(ps[0].Message, "is not a regular file (directories or symlinks are not supported)") {
		t.Errorf("CheckTrustStores = %v", ps)
	}
}

func TestExplain(t *testing.T) {
	ts := truststore.New(t.TempDir())
	root := testpki.Root(t, "explain-root", testpki.WithValidity(time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour)))
	writeFile(t, filepath.Join(ts.Path(truststore.Ref{Type: truststore.TypeCA, Name: "acme"}), "root.pem"), testpki.CertsPEM(root.Cert))
	doc, err := Parse([]byte(oci(stmt("app", "registryScopes", `["registry.example.com/app"]`, "trustStores", `["ca:acme", "tsa:missing"]`, "trustedIdentities", `["x509.subject: C=US, ST=WA, O=acme", "plug:x"]`))), "p.json", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := doc.Select(mustRef(t, "registry.example.com/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	ex := Explain(doc, sel, ExplainOptions{TrustStore: ts})
	if ex.Statement != "app" || ex.Line != 4 || ex.Column != 5 || len(ex.Notes) != 1 || !strings.Contains(ex.Notes[0], "is a tag") {
		t.Errorf("explanation: %+v", ex)
	}
	if len(ex.TrustStores) != 2 || len(ex.TrustStores[0].Certificates) != 1 || ex.TrustStores[0].Certificates[0].Status != "valid" ||
		!ex.TrustStores[0].Certificates[0].CA || ex.TrustStores[1].Error == "" {
		t.Errorf("stores: %+v", ex.TrustStores)
	}
	if ex.TrustedIdentities[0].Kind != "x509.subject" || len(ex.TrustedIdentities[0].Attributes) != 3 || ex.TrustedIdentities[1].Kind != "plugin" {
		t.Errorf("identities: %+v", ex.TrustedIdentities)
	}
	if !strings.HasPrefix(ex.Timestamps, "for every notary.x509 signature") {
		t.Errorf("timestamps: %s", ex.Timestamps)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestLintOverlapAmongManyIdentities: with more identities than are
// compared pairwise, and plugin identities between them, the overlapping
// pair is found and reported at the later one's index.
func TestLintOverlapAmongManyIdentities(t *testing.T) {
	ids := []string{`"com.example:plugin-a"`}
	for i := 0; i < 12; i++ {
		ids = append(ids, fmt.Sprintf(`"x509.subject: C=US, ST=WA, O=acme, OU=team %d, CN=signer"`, i))
	}
	ids = append(ids, `"com.example:plugin-b"`, `"x509.subject: C=US, ST=WA, O=acme, OU=team 5, L=Seattle"`)
	doc, err := Parse([]byte(oci(stmt("a", "trustedIdentities", "["+strings.Join(ids, ", ")+"]"))), "", TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range Lint(doc, LintOptions{}) {
		if f.Rule == LintIdentityOverlap {
			got = append(got, f.Pointer+" "+f.Value)
		}
	}
	want := `/trustPolicies/0/trustedIdentities/14 "x509.subject: C=US, ST=WA, O=acme, OU=team 5, L=Seattle"`
	if len(got) != 1 || got[0] != want {
		t.Fatalf("overlaps %q, want [%s]", got, want)
	}
}
