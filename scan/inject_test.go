package scan

import (
	"bytes"
	"encoding/csv"
	"strings"
	"testing"
	"unicode"
)

// TestReportsNeutraliseInjection writes a record whose every registry- or
// signer-given text carries terminal escapes, C1 controls, bidirectional
// overrides (which make a terminal or a browser show a signer's name as
// another) and spreadsheet formulas, in text, CSV and HTML: none reaches
// the report as is.
func TestReportsNeutraliseInjection(t *testing.T) {
	evil := "\x1b]0;pwned\x07\x1b[2J\u009b31m\u202eeulav\u2066x\u2069\u200b"
	id := &Identity{Subject: "CN=" + evil, X509Subject: "x509.subject: C=US, ST=WA, O=" + evil, SANs: []string{"uri:https://x/" + evil}, OIDCIssuer: evil}
	r := &Record{Version: RecordVersion, Kind: KindArtifact, Registry: "r.example", Repository: "team/" + evil,
		Reference: "r.example/team/" + evil + "@sha256:" + strings.Repeat("a", 64), Digest: "sha256:" + strings.Repeat("a", 64),
		Tags: []string{"v1" + evil}, Platform: "=HYPERLINK(\"http://evil\")/" + evil, Status: StatusSigned,
		Signatures: []*Signature{{Role: RoleSignature, Format: FormatNotation, Identities: []*Identity{id}},
			{Role: RoleSignature, Format: FormatSigstoreBundle, Identities: []*Identity{{KeyHint: "+" + evil}}}},
		Findings: []string{"finding " + evil}, Errors: []string{"error " + evil},
		Verification: &Verification{Verdict: VerdictFailed, Statement: "s" + evil}}
	bad := func(s string) bool {
		return strings.ContainsFunc(s, func(c rune) bool {
			return (c < 0x20 && c != '\n' && c != '\r') || c == 0x7f || (c >= 0x80 && c < 0xa0) || unicode.Is(unicode.Cf, c)
		})
	}

	var text bytes.Buffer
	tr := NewTextReporter(&text)
	tr.Add(r)
	tr.Close()
	if bad(text.String()) {
		t.Errorf("text report carries control or format characters: %q", text.String())
	}

	var c bytes.Buffer
	cr := NewCSVReporter(&c)
	cr.Add(r)
	cr.Close()
	rows, err := csv.NewReader(bytes.NewReader(c.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	for _, cell := range rows[1] {
		if bad(cell) {
			t.Errorf("CSV cell %q carries control or format characters", cell)
		}
		if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
			t.Errorf("CSV cell %q starts a formula", cell)
		}
	}

	var page bytes.Buffer
	h, err := NewHTMLReporter(&page, t.TempDir(), "t")
	if err != nil {
		t.Fatal(err)
	}
	h.Add(r)
	h.Close()
	if bad(page.String()) {
		t.Errorf("HTML report carries control or format characters")
	}
}
