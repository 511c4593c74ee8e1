// Package hostile_test holds keyward verify to the bounds SECURITY.md
// states, against a registry and OCI layouts built to break them: each
// case runs the keyward binary and asserts its exit status, its error, its
// wall time and its peak memory (the child's maximum resident set size).
package hostile_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/hostile"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

var (
	rsswrapOnce sync.Once
	rsswrapBin  string
	rsswrapErr  error
)

// rsswrap builds testdata/rsswrap, which runs keyward and reports its own
// peak RSS: measured from this (large) test process, a child's ru_maxrss
// would start from the test's.
func rsswrap(t *testing.T) string {
	t.Helper()
	rsswrapOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rsswrap")
		if err != nil {
			rsswrapErr = err
			return
		}
		rsswrapBin = filepath.Join(dir, "rsswrap")
		out, err := exec.Command("go", "build", "-o", rsswrapBin, "./testdata/rsswrap").CombinedOutput()
		if err != nil {
			rsswrapErr = fmt.Errorf("go build rsswrap: %v\n%s", err, out)
		}
	})
	if rsswrapErr != nil {
		t.Fatal(rsswrapErr)
	}
	return rsswrapBin
}

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Cleanup()
	if rsswrapBin != "" {
		os.RemoveAll(filepath.Dir(rsswrapBin))
	}
	os.Exit(code)
}

// run is one run of keyward verify.
type run struct {
	status  int
	stdout  string
	stderr  string
	elapsed time.Duration
	maxRSS  int64 // bytes
}

// world is a trust policy and trust store that any test signature fails.
type world struct {
	policy, store string
}

func newWorld(t *testing.T) world {
	t.Helper()
	dir := t.TempDir()
	store := filepath.Join(dir, "truststore")
	ca := filepath.Join(store, "x509", "ca", "hostile")
	if err := os.MkdirAll(ca, 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, ca, "root.pem", testpki.CertsPEM(testpki.Root(t, "hostile test root").Cert), 0o644)
	policy := testpki.WriteFile(t, dir, "policy.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],
"signatureVerification":{"level":"strict"},"trustStores":["ca:hostile"],"trustedIdentities":["*"]}]}`), 0o644)
	return world{policy: policy, store: store}
}

// verifyCmd runs keyward verify with args and returns what it did.
func (w world) verifyCmd(t *testing.T, timeout time.Duration, args ...string) run {
	t.Helper()
	bin := testenv.KeywardBinary(t)
	rssFile := filepath.Join(t.TempDir(), "rss")
	cmd := exec.Command(rsswrap(t), append([]string{bin, "verify", "--policy", w.policy, "--trust-store", w.store}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "RSSWRAP_OUT=" + rssFile}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("keyward verify %v still ran after %s\n%s%s", args, timeout, out.String(), errb.String())
	}
	r := run{status: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	raw, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatalf("rsswrap reported no peak RSS: %v\n%s", err, r.stderr)
	}
	if r.maxRSS, err = strconv.ParseInt(string(raw), 10, 64); err != nil {
		t.Fatal(err)
	}
	t.Logf("keyward verify: exit %d in %s, peak RSS %d MiB", r.status, r.elapsed.Round(time.Millisecond), r.maxRSS>>20)
	return r
}

// result decodes the one JSON line of a run.
func (r run) result(t *testing.T) verify.ReferenceResult {
	t.Helper()
	var res verify.ReferenceResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &res); err != nil {
		t.Fatalf("output is not one JSON result: %v\n%s%s", err, r.stdout, r.stderr)
	}
	return res
}

// TestHostileRegistry runs keyward verify against each mode of the hostile
// registry and checks the bound that mode attacks.
func TestHostileRegistry(t *testing.T) {
	w := newWorld(t)
	const mib = 1 << 20
	for _, tc := range []struct {
		mode     hostile.Mode
		sigs     int
		args     []string
		kind     verify.ArtifactErrorKind
		message  string
		maxTime  time.Duration
		maxRSS   int64
		maxCalls int64
	}{
		{mode: hostile.Honest, kind: verify.ErrorVerificationFailed, message: "signature verification failed", maxTime: 10 * time.Second, maxRSS: 150 * mib, maxCalls: 10},
		{mode: hostile.SlowBody, kind: verify.ErrorRetrievalFailed, message: "did not arrive within 2s", maxTime: 15 * time.Second, maxRSS: 150 * mib, maxCalls: 10},
		{mode: hostile.SelfLink, kind: verify.ErrorRetrievalFailed, message: "referrers page links loop", maxTime: 10 * time.Second, maxRSS: 150 * mib, maxCalls: 10},
		{mode: hostile.LinkCycle, kind: verify.ErrorRetrievalFailed, message: "referrers page links loop", maxTime: 10 * time.Second, maxRSS: 150 * mib, maxCalls: 10},
		{mode: hostile.EndlessPages, kind: verify.ErrorRetrievalFailed, message: "too many referrers pages", maxTime: 20 * time.Second, maxRSS: 150 * mib, maxCalls: 80},
		{mode: hostile.HugeDeclared, kind: verify.ErrorRetrievalFailed, message: "bytes, more than the", maxTime: 10 * time.Second, maxRSS: 150 * mib, maxCalls: 10},
		{mode: hostile.LyingDigest, kind: verify.ErrorRetrievalFailed, message: "content has digest", maxTime: 10 * time.Second, maxRSS: 150 * mib, maxCalls: 10},
		{mode: hostile.RedirectLoop, kind: verify.ErrorRetrievalFailed, message: "stopped after 5 redirects", maxTime: 10 * time.Second, maxRSS: 150 * mib, maxCalls: 20},
		// 40 envelopes of 32 MiB: 1.3 GB were held before envelopes were
		// dropped once judged.
		{mode: hostile.HugeEnvelopes, sigs: 40, kind: verify.ErrorVerificationFailed, message: "signature verification failed", maxTime: 60 * time.Second, maxRSS: 320 * mib, maxCalls: 100},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			reg := hostile.Start(t, tc.mode, tc.sigs)
			r := w.verifyCmd(t, tc.maxTime+30*time.Second, append([]string{"--plain-http", "--request-timeout", "2s", "-o", "json", reg.Reference()}, tc.args...)...)
			res := r.result(t)
			if r.status != 1 || res.Verified || res.Error == nil || res.Error.Kind != tc.kind || !strings.Contains(res.Error.Message, tc.message) {
				t.Fatalf("exit %d, result %+v; want exit 1, kind %s, message with %q", r.status, res.Error, tc.kind, tc.message)
			}
			if r.elapsed > tc.maxTime {
				t.Errorf("took %s, bound %s", r.elapsed, tc.maxTime)
			}
			if r.maxRSS > tc.maxRSS {
				t.Errorf("peak RSS %d MiB, bound %d MiB", r.maxRSS>>20, tc.maxRSS>>20)
			}
			if n := reg.Requests.Load(); n > tc.maxCalls {
				t.Errorf("%d requests, bound %d", n, tc.maxCalls)
			}
			if tc.mode == hostile.HugeEnvelopes && len(res.Signatures) != tc.sigs {
				t.Errorf("%d signatures judged, want %d", len(res.Signatures), tc.sigs)
			}
		})
	}
}

// TestHostileRegistryText checks that a registry's error message cannot
// forge output lines or send terminal escapes through text output.
func TestHostileRegistryText(t *testing.T) {
	w := newWorld(t)
	reg := hostile.Start(t, hostile.ControlChars, 0)
	r := w.verifyCmd(t, 30*time.Second, "--plain-http", reg.Reference())
	if r.status != 1 {
		t.Fatalf("exit %d\n%s%s", r.status, r.stdout, r.stderr)
	}
	if strings.ContainsAny(r.stdout+r.stderr, "\x1b\x07\r") {
		t.Errorf("raw control characters reached the terminal: %q", r.stdout)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "VERIFIED") {
			t.Errorf("a forged line: %q", line)
		}
	}
	if !strings.Contains(r.stdout, `\x1b]0;pwned\x07`) {
		t.Errorf("the escaped message is missing: %q", r.stdout)
	}
}

// layoutWith writes an OCI image layout whose index.json is index (or, if
// index is nil, is made by mkIndex).
func layoutWith(t *testing.T, index []byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dir, "oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
	if index != nil {
		testpki.WriteFile(t, dir, "index.json", index, 0o644)
	}
	return dir
}

func indexOf(ds ...ocispec.Descriptor) []byte {
	b, _ := json.Marshal(ocispec.Index{Versioned: ocispecVersioned(), MediaType: ocispec.MediaTypeImageIndex, Manifests: ds})
	return b
}

// TestHostileLayouts runs keyward verify --oci-layout on layouts built to
// exhaust memory, hang the reader or read outside the layout.
func TestHostileLayouts(t *testing.T) {
	w := newWorld(t)
	d := digest.FromString("artifact")
	const mib = 1 << 20
	outside := testpki.WriteFile(t, t.TempDir(), "secret", []byte(`{"not":"yours"}`), 0o644)
	for _, tc := range []struct {
		name    string
		make    func(t *testing.T) string
		message string
	}{
		{"declared 2^39 bytes", func(t *testing.T) string {
			return layoutWith(t, indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1 << 39}))
		}, "549755813888 bytes, more than the 4194304 allowed"},
		{"index.json is a FIFO", func(t *testing.T) string {
			dir := layoutWith(t, nil)
			if err := syscall.Mkfifo(filepath.Join(dir, "index.json"), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "index.json is not a regular file"},
		{"index.json of 20 MiB", func(t *testing.T) string {
			big := append([]byte(`{"schemaVersion":2,"manifests":[],"x":"`), bytes.Repeat([]byte("a"), 20*mib)...)
			return layoutWith(t, append(big, `"}`...))
		}, "more than the 16777216 allowed"},
		{"blob is a symbolic link out of the layout", func(t *testing.T) string {
			raw, _ := os.ReadFile(outside)
			bd := digest.FromBytes(raw)
			dir := layoutWith(t, indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: bd, Size: int64(len(raw))}))
			if err := os.Symlink(outside, filepath.Join(dir, "blobs", "sha256", bd.Encoded())); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "escapes from parent"},
		{"blob is a FIFO", func(t *testing.T) string {
			dir := layoutWith(t, indexOf(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 10}))
			if err := syscall.Mkfifo(filepath.Join(dir, "blobs", "sha256", d.Encoded()), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, "is not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.make(t)
			r := w.verifyCmd(t, 30*time.Second, "--oci-layout", "--scope", "local/app", "-o", "json", dir+"@"+d.String())
			res := r.result(t)
			if r.status != 1 || res.Error == nil || res.Error.Kind != verify.ErrorResolve || !strings.Contains(res.Error.Message, tc.message) {
				t.Fatalf("exit %d, error %+v; want a resolve error with %q", r.status, res.Error, tc.message)
			}
			if r.elapsed > 10*time.Second {
				t.Errorf("took %s", r.elapsed)
			}
			if r.maxRSS > 150*mib {
				t.Errorf("peak RSS %d MiB", r.maxRSS>>20)
			}
			if strings.Contains(r.stdout, "not yours") {
				t.Error("content outside the layout was read")
			}
		})
	}
}

func ocispecVersioned() specs.Versioned { return specs.Versioned{SchemaVersion: 2} }
