package main

import (
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

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

// pushCreated pushes an image whose manifest carries the
// org.opencontainers.image.created annotation, tagged tag.
func pushCreated(t *testing.T, reg *testenv.Registry, repo, tag string, created time.Time) string {
	t.Helper()
	config := testenv.PutBlob(t, reg, repo, ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	layer := testenv.PutBlob(t, reg, repo, ocispec.MediaTypeImageLayer, []byte(tag+created.String()))
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: config, Layers: []ocispec.Descriptor{layer}, Annotations: map[string]string{ocispec.AnnotationCreated: created.UTC().Format(time.RFC3339)}})
	testenv.PutManifest(t, reg, repo, tag, ocispec.MediaTypeImageManifest, m)
	return godigest.FromBytes(m).String()
}

// TestScanFilters: repository glob, tag regex, platforms, age, and the cap
// on bytes per artifact.
func TestScanFilters(t *testing.T) {
	reg := testenv.StartDistribution(t)
	testenv.PushTagged(t, reg, "f/a", "v1")
	testenv.PushTagged(t, reg, "f/a", "dev")
	testenv.PushTagged(t, reg, "f/b", "v1")
	_, index, children := testenv.PushIndex(t, reg, "f/idx", "v1",
		ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	old := pushCreated(t, reg, "f/age", "old", time.Now().Add(-48*time.Hour))
	fresh := pushCreated(t, reg, "f/age", "fresh", time.Now().Add(-time.Hour))
	env := map[string]string{"HOME": t.TempDir()}

	digests := func(args ...string) map[string]bool {
		t.Helper()
		status, out, errOut := runScanCmd(t, env, append([]string{"--plain-http", "-o", "json"}, args...)...)
		if status != exitOK {
			t.Fatalf("%v: status %d\n%s", args, status, errOut)
		}
		m := map[string]bool{}
		for _, r := range decodeRecords(t, out) {
			m[r.Repository+":"+strings.Join(r.Tags, ",")+"@"+r.Platform] = true
			m[r.Digest] = true
		}
		return m
	}
	got := digests("--repository", "f/[ab]", "--tag-regex", "^v", reg.Host)
	if len(got) != 4 || !got["f/a:v1@"] || !got["f/b:v1@"] {
		t.Errorf("--repository f/[ab] --tag-regex ^v: %v", got)
	}
	got = digests("--platforms", "linux/arm64", reg.Host+"/f/idx")
	if len(got) != 4 || !got[index.Digest.String()] || !got[children[1].Digest.String()] || got[children[0].Digest.String()] {
		t.Errorf("--platforms linux/arm64: %v", got)
	}
	got = digests("--max-age", "24h", reg.Host+"/f/age")
	if !got[fresh] || got[old] {
		t.Errorf("--max-age 24h: %v", got)
	}
	got = digests("--min-age", "24h", reg.Host+"/f/age")
	if got[fresh] || !got[old] {
		t.Errorf("--min-age 24h: %v", got)
	}
	// Without a creation time, an artifact passes the age filters.
	if got = digests("--min-age", "24h", reg.Host+"/f/b"); len(got) != 2 {
		t.Errorf("--min-age on an image without creation time: %v", got)
	}

	status, out, _ := runScanCmd(t, env, "--plain-http", "-o", "json", "--max-bytes", "100", reg.Host+"/f/b")
	recs := decodeRecords(t, out)
	if status != exitFailure || len(recs) != 1 || recs[0].Status != scan.StatusError || !strings.Contains(strings.Join(recs[0].Errors, " "), "--max-bytes") {
		t.Errorf("--max-bytes 100: status %d, %+v", status, recs)
	}
}
