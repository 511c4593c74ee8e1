package scan

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/verify"
)

// htmlRecords are records of three repositories: signed and verified,
// unsigned and failed, cosign-only, and an orphan.
func htmlRecords() []*Record {
	id := &Identity{X509Subject: "x509.subject: C=US, ST=WA, O=acme, CN=release", Verified: true}
	var out []*Record
	for i := range 6 {
		repo := fmt.Sprintf("team/app%d", i%3)
		r := &Record{Version: RecordVersion, Kind: KindArtifact, Registry: "r.example", Repository: repo,
			Reference: fmt.Sprintf("r.example/%s@sha256:%064d", repo, i), Digest: fmt.Sprintf("sha256:%064d", i),
			Tags: []string{fmt.Sprintf("v%d", i)}, Signatures: []*Signature{}}
		switch i % 3 {
		case 0:
			r.Status = StatusSigned
			r.Signatures = []*Signature{{Role: RoleSignature, Format: FormatNotation, Identities: []*Identity{id}, Verified: true}}
			r.Verification = &Verification{Verdict: VerdictVerified, Verified: true, Statement: "all"}
		case 1:
			r.Status = StatusUnsigned
			r.Verification = &Verification{Verdict: VerdictFailed, Statement: "all", FailedCheck: "no-signature",
				Error: &verify.ReferenceError{Kind: verify.ErrorNoSignature, Message: "no signature"}}
		case 2:
			r.Status = StatusSigned
			r.Signatures = []*Signature{{Role: RoleSignature, Format: FormatSimpleSigning, Identities: []*Identity{{KeyHint: "abc="}}}}
			r.Verification = &Verification{Verdict: VerdictNotVerifiable, Statement: "all", FailedCheck: "no-signature"}
		}
		out = append(out, r)
	}
	out = append(out, &Record{Version: RecordVersion, Kind: KindOrphan, Registry: "r.example", Repository: "team/app0",
		Reference: "r.example/team/app0@sha256:" + strings.Repeat("f", 64), Status: StatusOrphaned, Tags: []string{}, Signatures: []*Signature{},
		Findings: []string{"orphaned: <script>alert(1)</script>"}})
	return out
}

func writeHTML(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	h, err := NewHTMLReporter(&buf, t.TempDir(), "scan <test>")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range htmlRecords() {
		if err := h.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHTMLReport(t *testing.T) {
	data, err := os.ReadFile(writeHTML(t))
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	for _, want := range []string{`<td id="t-artifacts">6</td>`, `<td id="t-orphans">1</td>`, "<title>scan &lt;test&gt;</title>",
		"<td>r.example/team/app0</td><td>2</td><td>2</td><td>0</td><td>2</td><td>0</td><td>0</td><td>1</td>",
		"<td>not-verifiable</td><td>2</td>", "<td>x509.subject: C=US, ST=WA, O=acme, CN=release</td><td>2</td>", "&lt;script&gt;alert(1)"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") {
		t.Error("a registry's text reached the page unescaped")
	}
}

// chromium runs Debian's chromium headless on the page with args.
func chromium(t *testing.T, args ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Missing(t, "chromium is not installed: run scripts/tools-chromium.sh (make tools)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
		"--disable-sync", "--no-first-run", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// TestHTMLReportInChromium opens the report in headless Chromium: a
// screenshot shows the totals and the table, and the filter set from the
// URL fragment hides the other rows.
func TestHTMLReportInChromium(t *testing.T) {
	path := writeHTML(t)
	shot := filepath.Join(t.TempDir(), "report.png")
	chromium(t, "--window-size=1400,1000", "--screenshot="+shot, "file://"+path)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if colors := distinctColors(img); colors < 8 {
		t.Errorf("the screenshot has %d colours: a blank page", colors)
	}
	if dir := os.Getenv("KEYWARD_SCREENSHOT_DIR"); dir != "" {
		data, _ := os.ReadFile(shot)
		os.WriteFile(filepath.Join(dir, "scan-report.png"), data, 0o644)
	}

	rows := regexp.MustCompile(`<tr data-status="[^"]*" data-verdict="([^"]*)"( hidden="")?>`)
	for _, tc := range []struct {
		fragment string
		shown    map[string]int // verdict -> rows shown
	}{
		{"", map[string]int{"verified": 2, "failed": 2, "not-verifiable": 2, "": 1}},
		{"#verdict=failed", map[string]int{"failed": 2}},
		{"#q=app1", map[string]int{"failed": 2}},
		{"#status=signed&verdict=verified", map[string]int{"verified": 2}},
		{"#q=no+such+thing", map[string]int{}},
		// A malformed escape is taken as written; the rest still filters.
		{"#bad=%E0%A4%A&verdict=failed", map[string]int{"failed": 2}},
		{"#q=%zz", map[string]int{}},
	} {
		dom := string(chromium(t, "--dump-dom", "file://"+path+tc.fragment))
		got := map[string]int{}
		total := 0
		for _, m := range rows.FindAllStringSubmatch(dom, -1) {
			total++
			if m[2] == "" {
				got[m[1]]++
			}
		}
		if total != 7 {
			t.Fatalf("%q: %d rows in the DOM, want 7:\n%s", tc.fragment, total, dom)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.shown) {
			t.Errorf("%q: rows shown by verdict %v, want %v", tc.fragment, got, tc.shown)
		}
		want := 0
		for _, n := range tc.shown {
			want += n
		}
		if !strings.Contains(dom, fmt.Sprintf(`data-shown="%d"`, want)) || !strings.Contains(dom, fmt.Sprintf("%d of 7 shown", want)) {
			t.Errorf("%q: the page does not say %d of 7 rows are shown", tc.fragment, want)
		}
	}
}

func distinctColors(img image.Image) int {
	seen := map[uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	return len(seen)
}
