package main

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/scan"
)

// proxy is a reverse proxy on 127.0.0.1 in front of a registry that
// records every request, can answer 429 with Retry-After until a time, and
// can slow every answer down.
type proxy struct {
	srv  *httptest.Server
	host string

	mu          sync.Mutex
	requests    []string // "METHOD path?query"
	limitFor    time.Duration
	limitedFrom time.Time // the first request
	limited     int
	// manifestsOnly limits manifest requests only (as Docker Hub limits
	// pulls), so that listings never race the limit.
	manifestsOnly bool
	delay         time.Duration
	inFlight      int
	maxInFlight   int
}

func newProxy(t *testing.T, reg *testenv.Registry) *proxy {
	t.Helper()
	target, err := url.Parse(reg.URL())
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests = append(p.requests, r.Method+" "+r.URL.RequestURI())
		if p.limitedFrom.IsZero() && strings.Contains(r.URL.Path, "/manifests/") {
			// The limit starts when the workers fetch manifests.
			p.limitedFrom = time.Now()
		}
		limit := !p.limitedFrom.IsZero() && time.Since(p.limitedFrom) < p.limitFor &&
			(!p.manifestsOnly || strings.Contains(r.URL.Path, "/manifests/"))
		if limit {
			p.limited++
		}
		delay := p.delay
		p.inFlight++
		p.maxInFlight = max(p.maxInFlight, p.inFlight)
		p.mu.Unlock()
		defer func() {
			p.mu.Lock()
			p.inFlight--
			p.mu.Unlock()
		}()
		if limit {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
			return
		}
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	p.host = strings.TrimPrefix(p.srv.URL, "http://")
	return p
}

// snapshot returns the requests so far and forgets them.
func (p *proxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.requests
	p.requests = nil
	return out
}

// mannersFixture pushes n tagged images to each of repos in reg, and signs
// the first of each with the keyward plugin.
func mannersFixture(t *testing.T, w *scanWorld, reg *testenv.Registry, repos []string, n int) {
	t.Helper()
	for _, repo := range repos {
		for i := range n {
			ref, _ := testenv.PushTagged(t, reg, repo, fmt.Sprintf("v%d", i))
			if i == 0 {
				w.notationSign(t, reg, ref, w.plugin()...)
			}
		}
	}
}

// recordSet sums up records as reference -> status/verdict.
func recordSet(recs []scan.Record) map[string]string {
	m := map[string]string{}
	for _, r := range recs {
		v := ""
		if r.Verification != nil {
			v = r.Verification.Verdict
		}
		m[r.Kind+" "+r.Repository+"@"+r.Digest+" "+strings.Join(r.Tags, ",")] = r.Status + "/" + v
	}
	return m
}

func sameSet(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s is %q, want %q", what, k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected record %s", what, k)
		}
	}
}

// TestScanRateLimited scans through a proxy that answers 429 with
// Retry-After: 1 to every request for 1.5 seconds from the first manifest
// request: the scan
// waits, completes with the records of a scan without the limit, and backs
// off rather than hammering the registry.
func TestScanRateLimited(t *testing.T) {
	w := newScanWorld(t)
	reg := testenv.StartDistribution(t)
	mannersFixture(t, w, reg, []string{"rl/a", "rl/b"}, 4)
	p := newProxy(t, reg)
	policyFile := w.scanPolicy(t, "unused.example")
	env := map[string]string{"HOME": t.TempDir()}
	args := []string{"--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json", "--concurrency", "4"}

	status, out, errOut := runScanCmd(t, env, append(args, p.host)...)
	if status != exitFailure { // the unsigned images fail the policy
		t.Fatalf("status %d; stderr:\n%s", status, errOut)
	}
	unlimited := recordSet(decodeRecords(t, out))
	if len(unlimited) != 8 {
		t.Fatalf("%d records without the limit, want 8", len(unlimited))
	}
	p.take()

	p.mu.Lock()
	p.limitFor, p.limitedFrom, p.limited = 1500*time.Millisecond, time.Time{}, 0
	p.mu.Unlock()
	start := time.Now()
	status, out, errOut = runScanCmd(t, env, append(args, p.host)...)
	elapsed := time.Since(start)
	if status != exitFailure {
		t.Fatalf("status %d; stderr:\n%s", status, errOut)
	}
	sameSet(t, "rate-limited scan", recordSet(decodeRecords(t, out)), unlimited)
	p.mu.Lock()
	limited := p.limited
	p.mu.Unlock()
	t.Logf("%d requests answered 429; the scan took %s", limited, elapsed)
	if limited == 0 || elapsed < 1500*time.Millisecond {
		t.Errorf("the proxy limited %d requests and the scan took %s: the limit did not apply", limited, elapsed)
	}
	// Four workers, each paused until Retry-After has passed: a handful of
	// 429s per pause, not a retry storm.
	if limited > 16 {
		t.Errorf("%d requests answered 429: the scan did not back off", limited)
	}
	if strings.Contains(out, "rate limiting") {
		t.Errorf("a record failed on the rate limit:\n%s", out)
	}
}

// TestScanCatalogRefused: a registry without catalog (olareg) is an error
// that asks for repositories, not an empty report; naming the repository
// scans it.
func TestScanCatalogRefused(t *testing.T) {
	reg := testenv.StartOlareg(t)
	testenv.PushTagged(t, reg, "named/app", "v1")
	env := map[string]string{"HOME": t.TempDir()}
	status, out, errOut := runScanCmd(t, env, "--plain-http", "-o", "json", reg.Host)
	if status != exitFailure || out != "" || !strings.Contains(errOut, "does not list its repositories") || !strings.Contains(errOut, "keyward scan "+reg.Host+"/REPOSITORY") {
		t.Errorf("status %d, stdout %q, stderr %q", status, out, errOut)
	}
	status, out, errOut = runScanCmd(t, env, "--plain-http", "-o", "json", reg.Host+"/named/app")
	recs := decodeRecords(t, out)
	if status != exitOK || len(recs) != 1 || recs[0].Status != scan.StatusUnsigned || recs[0].Tags[0] != "v1" {
		t.Errorf("status %d, records %+v, stderr %s", status, recs, errOut)
	}
	if !strings.Contains(out, `"notDeterminable":["docker-content-trust","simple-signing-lookaside"]`) {
		t.Errorf("an unsigned record does not say what is not determinable: %s", out)
	}
}

// TestScanResume kills a scan (the process, SIGKILL) halfway and resumes it
// with the same --state file: the resumed run reports every artifact, as a
// scan in one go does, and makes no request about an artifact the killed
// run had finished.
func TestScanResume(t *testing.T) {
	w := newScanWorld(t)
	reg := testenv.StartDistribution(t)
	mannersFixture(t, w, reg, []string{"res/a", "res/b", "res/c"}, 8)
	p := newProxy(t, reg)
	policyFile := w.scanPolicy(t, "unused.example")
	dir := t.TempDir()
	args := []string{"scan", "--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json",
		"--concurrency", "8", "--registry-concurrency", "2"}
	bin := testenv.KeywardBinary(t)
	environ := append(os.Environ(), "HOME="+dir)

	// The whole scan in one go, for reference.
	full := exec.Command(bin, append(args, p.host)...)
	full.Env = environ
	fullOut, _ := full.Output()
	want := recordSet(decodeRecords(t, string(fullOut)))
	if len(want) != 24 {
		t.Fatalf("%d records in one go, want 24", len(want))
	}
	p.mu.Lock()
	if p.maxInFlight != 2 {
		t.Errorf("at most %d requests in flight at once with --registry-concurrency 2, want 2", p.maxInFlight)
	}
	p.mu.Unlock()
	p.take()

	// Slowed down, killed once the state file holds 8 records.
	p.mu.Lock()
	p.delay = 40 * time.Millisecond
	p.mu.Unlock()
	state := filepath.Join(dir, "scan.state")
	first := exec.Command(bin, append(args, "--state", state, p.host)...)
	first.Env = environ
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for lines(t, state) < 8 {
		if time.Now().After(deadline) {
			first.Process.Kill()
			t.Fatalf("the state file has %d lines after 60 s", lines(t, state))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	finished := decodeRecords(t, readFile(t, state))
	if len(finished) >= 24 {
		t.Fatalf("the scan finished before it was killed (%d records): slow the proxy down", len(finished))
	}
	p.take()
	p.mu.Lock()
	p.delay = 0
	p.mu.Unlock()

	second := exec.Command(bin, append(args, "--state", state, p.host)...)
	second.Env = environ
	out, _ := second.Output()
	sameSet(t, "resumed scan", recordSet(decodeRecords(t, string(out))), want)
	requests := p.take()
	t.Logf("killed after %d of 24 records; the resumed scan made %d requests", len(finished), len(requests))
	for _, r := range finished {
		if r.Digest == "" {
			continue
		}
		hex := strings.TrimPrefix(r.Digest, "sha256:")
		for _, req := range requests {
			if strings.Contains(req, hex) {
				t.Errorf("the resumed scan asked about %s, finished before the kill: %s", r.Digest, req)
			}
		}
		for _, tag := range r.Tags {
			for _, req := range requests {
				if strings.HasSuffix(req, "/"+r.Repository+"/manifests/"+tag) {
					t.Errorf("the resumed scan resolved tag %s of %s again: %s", tag, r.Repository, req)
				}
			}
		}
	}
	if got := lines(t, state); got != 24 {
		t.Errorf("the state file has %d records after the resumed scan, want 24", got)
	}
}

func lines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		n++
	}
	return n
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Only complete lines: the killed run may have cut the last short.
	s := string(data)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[:i+1]
	}
	return ""
}

// TestScanSkipFetchesNothing: the tags of a repository under a skip
// statement are counted from the tag list; nothing else is asked.
func TestScanSkipFetchesNothing(t *testing.T) {
	w := newScanWorld(t)
	reg := testenv.StartDistribution(t)
	for _, tag := range []string{"v1", "v2", "v3"} {
		testenv.PushTagged(t, reg, "skip/app", tag)
	}
	p := newProxy(t, reg)
	policyFile := w.scanPolicy(t, p.host)
	env := map[string]string{"HOME": t.TempDir()}
	status, out, errOut := runScanCmd(t, env, "--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json", p.host)
	recs := decodeRecords(t, out)
	if status != exitOK || len(recs) != 3 {
		t.Fatalf("status %d, %d records\n%s", status, len(recs), errOut)
	}
	for _, r := range recs {
		if r.Kind != scan.KindSkipped || r.Verification.Verdict != scan.VerdictSkipped || r.Digest != "" {
			t.Errorf("record %+v", r)
		}
	}
	for _, req := range p.take() {
		if !strings.HasPrefix(req, "GET /v2/_catalog") && !strings.HasPrefix(req, "GET /v2/skip/app/tags/list") {
			t.Errorf("a skipped repository was asked %s", req)
		}
	}
}

// TestScanTokenAuth scans a registry with token authentication: the
// catalog is listed with a registry:catalog:* token, the repositories with
// pull tokens, one per repository.
func TestScanTokenAuth(t *testing.T) {
	issuer := testenv.StartTokenIssuer(t, testenv.TokenIssuerOptions{Users: map[string]string{"u": "p4ss-word"}})
	reg := testenv.StartDistributionWithTokenAuth(t, issuer, "u", "p4ss-word")
	testenv.PushTagged(t, reg, "tok/a", "v1")
	testenv.PushTagged(t, reg, "tok/b", "v1")
	before := issuer.Requests()
	env := map[string]string{"HOME": t.TempDir(), "NOTATION_USERNAME": "u", "NOTATION_PASSWORD": "p4ss-word"}
	status, out, errOut := runScanCmd(t, env, "--plain-http", "-o", "json", reg.Host)
	recs := decodeRecords(t, out)
	if status != exitOK || len(recs) != 2 {
		t.Fatalf("status %d, %d records\n%s", status, len(recs), errOut)
	}
	if n := issuer.Requests() - before; n != 3 {
		t.Errorf("%d token requests, want 3 (catalog, two repositories)", n)
	}
	// Without credentials the catalog is refused: an error, not an empty
	// report.
	status, out, errOut = runScanCmd(t, map[string]string{"HOME": t.TempDir()}, "--plain-http", "-o", "json", reg.Host)
	if status != exitFailure || out != "" || !strings.Contains(errOut, "does not list its repositories") {
		t.Errorf("anonymous: status %d, stdout %q, stderr %q", status, out, errOut)
	}
}

// TestScanResumeOrphans runs a scan with --state to its end, then again
// with the same file: the second run lists the catalog and the tags and
// asks the registry nothing else. The fixture has what a resumed run used
// to ask about again: an orphaned notation signature (a tag-schema index
// whose subject is deleted), an orphaned cosign .sig tag, and a cosign
// .sig tag whose subject is there but filtered out by --tag-regex (its
// existence checked by a HEAD request); and cosign-signed artifacts.
func TestScanResumeOrphans(t *testing.T) {
	w := newScanWorld(t)
	if w.cosign == "" {
		testenv.Missing(t, "cosign is not built: run make tools")
	}
	reg := testenv.StartDistribution(t)
	if reg.Referrers {
		t.Fatal("distribution serves the referrers API: the notation orphan needs the tag schema")
	}
	mannersFixture(t, w, reg, []string{"res/a"}, 2)
	ref, gone := testenv.PushTagged(t, reg, "orphan/notation", "v1")
	w.notationSign(t, reg, ref, w.plugin()...)
	testenv.DeleteManifest(t, reg, "orphan/notation", gone.Digest.String())
	ref, goneCosign := testenv.PushTagged(t, reg, "orphan/cosign", "v1")
	w.cosignSign(t, ref)
	testenv.DeleteManifest(t, reg, "orphan/cosign", goneCosign.Digest.String())
	ref, _ = testenv.PushTagged(t, reg, "cosign/keyed", "v1")
	w.cosignSign(t, ref)
	ref, filtered := testenv.PushTagged(t, reg, "filtered/app", "dev")
	w.cosignSign(t, ref)

	p := newProxy(t, reg)
	policyFile := w.scanPolicy(t, "unused.example")
	env := map[string]string{"HOME": t.TempDir()}
	state := filepath.Join(t.TempDir(), "scan.state")
	args := []string{"--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json",
		"--tag-regex", "^v", "--state", state, p.host}

	_, out, errOut := runScanCmd(t, env, args...)
	want := recordSet(decodeRecords(t, out))
	orphans := 0
	for k, v := range want {
		if strings.HasPrefix(k, scan.KindOrphan+" ") && strings.HasPrefix(v, scan.StatusOrphaned+"/") {
			orphans++
		}
	}
	if len(want) != 5 || orphans != 2 {
		t.Fatalf("%d records, %d orphaned, want 5 and 2: %v\n%s", len(want), orphans, want, errOut)
	}
	first := p.take()
	for _, d := range []ocispec.Descriptor{gone, goneCosign, filtered} {
		if !slices.ContainsFunc(first, func(r string) bool { return strings.HasPrefix(r, "HEAD ") && strings.Contains(r, d.Digest.String()) }) {
			t.Errorf("the first run did not check that subject %s is there: the fixture does not test what it should", d.Digest)
		}
	}

	_, out, errOut = runScanCmd(t, env, args...)
	sameSet(t, "resumed scan", recordSet(decodeRecords(t, out)), want)
	listing := regexp.MustCompile(`^GET /v2/(_catalog|[a-z0-9/]+/tags/list)(\?|$)`)
	for _, r := range p.take() {
		if !listing.MatchString(r) {
			t.Errorf("the resumed scan asked %s; everything was finished", r)
		}
	}
	if t.Failed() {
		t.Logf("stderr of the resumed scan:\n%s", errOut)
	}
}

// TestScanRateLimitedForever scans through a proxy that answers 429 with
// Retry-After: 1 to every manifest request from the first one on: with
// --max-rate-limit-wait 2s the scan gives the registry up after about two
// seconds of pauses, reports each of its artifacts in error (never
// unsigned) and exits 1.
func TestScanRateLimitedForever(t *testing.T) {
	w := newScanWorld(t)
	reg := testenv.StartDistribution(t)
	mannersFixture(t, w, reg, []string{"rl/a", "rl/b"}, 4)
	p := newProxy(t, reg)
	p.mu.Lock()
	// Manifests only: a tag list answered 429 makes its repository one
	// error record instead of one per tag, and which requests come first
	// is up to the scheduler.
	p.limitFor, p.manifestsOnly = time.Hour, true
	p.mu.Unlock()
	policyFile := w.scanPolicy(t, "unused.example")
	env := map[string]string{"HOME": t.TempDir()}
	start := time.Now()
	status, out, errOut := runScanCmd(t, env, "--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json",
		"--concurrency", "4", "--max-rate-limit-wait", "2s", p.host)
	elapsed := time.Since(start)
	if status != exitFailure {
		t.Errorf("status %d, want %d; stderr:\n%s", status, exitFailure, errOut)
	}
	recs := decodeRecords(t, out)
	if len(recs) != 8 {
		t.Errorf("%d records, want 8 (one per tag); stderr:\n%s", len(recs), errOut)
	}
	for _, r := range recs {
		if r.Status != scan.StatusError || !strings.Contains(strings.Join(r.Errors, " "), "--max-rate-limit-wait") {
			t.Errorf("%s: status %s, errors %q: want error naming --max-rate-limit-wait", r.Reference, r.Status, r.Errors)
		}
	}
	p.mu.Lock()
	limited := p.limited
	p.mu.Unlock()
	t.Logf("%d requests answered 429; the scan took %s", limited, elapsed)
	// About 2 s of pauses, then nothing more is sent; far below what 8
	// retries of each request (each paused up to 8 s) would take.
	if elapsed > 15*time.Second || limited > 16 {
		t.Errorf("the scan took %s and was answered 429 %d times: the budget did not stop it", elapsed, limited)
	}
	if !strings.Contains(errOut, "8 artifacts failed the trust policy or could not be read") {
		t.Errorf("stderr does not count the 8 artifacts in error:\n%s", errOut)
	}
}

// TestScanOneRequestPerTag: an artifact's manifest is read in the request
// that resolves its tag (GET by tag), never resolved by HEAD and fetched
// again by digest; each tag is asked once, and the records are those of
// the signed and unsigned artifacts with their verdicts.
func TestScanOneRequestPerTag(t *testing.T) {
	w := newScanWorld(t)
	reg := testenv.StartDistribution(t)
	mannersFixture(t, w, reg, []string{"req/app"}, 3)
	p := newProxy(t, reg)
	policyFile := w.scanPolicy(t, p.host)
	env := map[string]string{"HOME": t.TempDir()}
	status, out, errOut := runScanCmd(t, env, "--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json", p.host)
	recs := decodeRecords(t, out)
	if status != exitFailure || len(recs) != 3 {
		t.Fatalf("status %d (want %d: two unsigned), %d records\n%s", status, exitFailure, len(recs), errOut)
	}
	signed := 0
	for _, r := range recs {
		if r.Status == scan.StatusSigned && r.Verification != nil && r.Verification.Verified {
			signed++
		}
	}
	if signed != 1 {
		t.Errorf("%d signed and verified records, want 1: %+v", signed, recs)
	}
	reqs := p.take()
	tagGets := map[string]int{}
	for _, req := range reqs {
		if strings.HasPrefix(req, "HEAD ") {
			t.Errorf("asked %s: a tag is resolved by the GET that reads its manifest", req)
		}
		for _, r := range recs {
			if strings.HasSuffix(req, "/manifests/"+r.Digest) {
				t.Errorf("asked %s: the manifest of %s was read with its tag already", req, r.Reference)
			}
		}
		if tag, ok := strings.CutPrefix(req, "GET /v2/req/app/manifests/v"); ok {
			tagGets[tag]++
		}
	}
	if len(tagGets) != 3 {
		t.Errorf("tags asked: %v, want v0, v1 and v2 once each\n%s", tagGets, strings.Join(reqs, "\n"))
	}
	for tag, n := range tagGets {
		if n != 1 {
			t.Errorf("tag v%s asked %d times, want once", tag, n)
		}
	}
}
