package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/scan"
)

// cmdSignerX509 is the identity keyward scan reports for the signer of
// newSignedWorld: the leaf's subject in its written order.
const cmdSignerX509 = "x509.subject: CN=verify cmd signer, O=keyward-test, L=Seattle, ST=WA, C=US"

// TestScanLayout scans an OCI image layout holding a signed image: one
// record, its signature found among the layout's manifests and verified.
func TestScanLayout(t *testing.T) {
	w := newScanWorld(t)
	layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	w.sign(t, "--oci-layout", layout+"@"+digest)
	policyFile := w.policy(t, "layout", "local/app", "strict", cmdIdentity)
	env := map[string]string{"HOME": t.TempDir()}
	status, out, errOut := runScanCmd(t, env, "--oci-layout", layout, "--scope", "local/app", "--policy", policyFile, "--trust-store", w.store, "-o", "json")
	recs := decodeRecords(t, out)
	if status != exitOK || len(recs) != 1 {
		t.Fatalf("status %d, %d records; stderr:\n%s\n%s", status, len(recs), errOut, out)
	}
	r := recs[0]
	if r.Digest != digest || r.Layout != layout || r.Status != scan.StatusSigned || r.Verification == nil || r.Verification.Verdict != scan.VerdictVerified ||
		len(r.Signatures) != 1 || r.Signatures[0].Source != scan.SourceLayout || !r.Signatures[0].Verified || r.Tags[0] != testenv.LayoutTag {
		t.Errorf("record %+v", r)
	}
	// keyward verify agrees.
	if status, _, errOut := runVerifyCmd(t, env, "", "--oci-layout", "--scope", "local/app", "--policy", policyFile, "--trust-store", w.store, r.Reference); status != exitOK {
		t.Errorf("keyward verify %s: status %d\n%s", r.Reference, status, errOut)
	}
}

// TestScanReports writes the text, CSV and HTML reports of one scan (the
// HTML one through --report) and checks what each says.
func TestScanReports(t *testing.T) {
	w := newScanWorld(t)
	reg := testenv.StartDistribution(t)
	mannersFixture(t, w, reg, []string{"rep/a", "rep/b"}, 2)
	policyFile := w.scanPolicy(t, "unused.example")
	env := map[string]string{"HOME": t.TempDir()}
	dir := t.TempDir()
	htmlFile, jsonFile := filepath.Join(dir, "scan.html"), filepath.Join(dir, "scan.jsonl")
	status, text, errOut := runScanCmd(t, env, "--plain-http", "--policy", policyFile, "--trust-store", w.store,
		"--report", "html="+htmlFile, "--report", "json="+jsonFile, reg.Host)
	if status != exitFailure || !strings.Contains(errOut, "2 artifacts failed the trust policy") {
		t.Errorf("status %d, stderr %q", status, errOut)
	}
	for _, want := range []string{"SIGNED", "UNSIGNED", "verified (statement all)", "failed (statement all, no-signature)",
		"4 artifacts: 2 signed, 2 unsigned", "verdicts: failed 2, verified 2", "signer " + cmdSignerX509 + ": 2 artifacts", "not determinable"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	data, err := os.ReadFile(jsonFile)
	if err != nil {
		t.Fatal(err)
	}
	if recs := decodeRecords(t, string(data)); len(recs) != 4 {
		t.Errorf("--report json: %d records", len(recs))
	}
	page, err := os.ReadFile(htmlFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<td id="t-artifacts">4</td>`, `<td id="t-signed">2</td>`, `<td id="t-unsigned">2</td>`,
		"<td>" + reg.Host + "/rep/a</td><td>2</td><td>1</td><td>1</td><td>1</td><td>1</td>", `data-verdict="verified"`, `data-verdict="failed"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("HTML report lacks %q", want)
		}
	}
	for _, external := range []string{"http://", "https://", "<link", "src=", "href=", "@import", "url("} {
		if strings.Contains(string(page), external) {
			t.Errorf("HTML report is not self-contained: it has %q", external)
		}
	}
	if strings.Count(string(page), "<tr data-status=") != 4 {
		t.Errorf("HTML report: %d rows, want 4", strings.Count(string(page), "<tr data-status="))
	}

	status, out, errOut := runScanCmd(t, env, "--plain-http", "-o", "csv", "--progress", "always", reg.Host)
	if !strings.Contains(errOut, "scanned 4/4 artifacts (0 from the state file)") {
		t.Errorf("--progress always: stderr %q", errOut)
	}
	if _, _, errOut := runScanCmd(t, env, "--plain-http", "-o", "csv", reg.Host); strings.Contains(errOut, "scanned") {
		t.Errorf("progress on a standard error that is not a terminal: %q", errOut)
	}
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || status != exitOK || len(rows) != 5 || rows[0][0] != "kind" {
		t.Fatalf("CSV: status %d, %v, rows %q", status, err, rows)
	}
	signed := 0
	for _, r := range rows[1:] {
		if r[7] == scan.StatusSigned && r[8] == "signature:notation" && r[9] == cmdSignerX509 {
			signed++
		}
	}
	if signed != 2 {
		t.Errorf("CSV: %d signed rows naming the signer, want 2:\n%s", signed, out)
	}
}

// TestScanUsage checks the flag errors.
func TestScanUsage(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing to scan", nil, "nothing to scan"},
		{"reference with tag", []string{"r.example/app:v1"}, "no tag or digest"},
		{"bad output", []string{"-o", "yaml", "r.example"}, "--output"},
		{"bad report", []string{"--report", "pdf=x", "r.example"}, "--report"},
		{"bad platform", []string{"--platforms", "linux", "r.example"}, "--platforms"},
		{"bad glob", []string{"--repository", "[", "r.example"}, "--repository"},
		{"bad regex", []string{"--tag-regex", "(", "r.example"}, "--tag-regex"},
		{"ages", []string{"--min-age", "2h", "--max-age", "1h", "r.example"}, "--min-age"},
		{"layout without scope", []string{"--oci-layout", "x"}, "--oci-layout needs --scope"},
		{"layout and host", []string{"--oci-layout", "x", "--scope", "local/x", "r.example"}, "give no HOST"},
		{"username alone", []string{"--username", "u", "r.example"}, "go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, errOut := runScanCmd(t, env, tc.args...)
			if status != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("status %d, stderr %q; want %d and %q", status, errOut, exitUsage, tc.want)
			}
		})
	}
}
