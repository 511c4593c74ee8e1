package serve

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/verify"
)

// scrape reads GET /metrics: each sample by its name and labels as
// exposed (labels sorted by name), e.g.
// keyward_serve_verdicts_total{verdict="verified"}.
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetrics checks that the counters of GET /metrics move as the
// requests say: requests by endpoint and code, verdicts, cache hits and
// misses by layer (a singleflight join included), verifications,
// registry requests and errors, policy reloads, and the cache gauges.
func TestMetrics(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "metrics/signed")
	unsigned, _ := testenv.PushArtifact(t, w.reg, "metrics/unsigned")
	proxy := startProxy(t, w.reg.Host)
	down := "127.0.0.1:1"
	s, err := New(w.config(proxy.host, down), Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	m0 := scrape(t, base)
	for _, name := range []string{`keyward_serve_cache_hits_total{layer="singleflight"}`, `keyward_serve_verdicts_total{verdict="error"}`,
		`keyward_serve_policy_reloads_total{result="failure"}`, "go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := m0[name]; !ok {
			t.Errorf("GET /metrics has no %s", name)
		}
	}

	// Two concurrent requests for one slow artifact: one verification,
	// one join.
	proxy.delay.Store(int64(150 * time.Millisecond))
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); post(t, http.DefaultClient, base, onHost(signed, proxy.host)) }()
	}
	wg.Wait()
	proxy.delay.Store(0)
	post(t, http.DefaultClient, base, onHost(signed, proxy.host), onHost(unsigned, proxy.host), down+"/x/z@sha256:"+strings.Repeat("a", 64), down+"/x/y:v1")
	s.Metrics().PolicyReload(true)
	s.Metrics().PolicyReload(false)
	s.Metrics().PolicyReload(false)
	if resp, err := http.Get(base + "/nowhere"); err == nil {
		resp.Body.Close()
	}

	m := scrape(t, base)
	delta := func(name string) float64 { return m[name] - m0[name] }
	for name, want := range map[string]float64{
		`keyward_serve_requests_total{code="200",endpoint="POST /v1/verify"}`:      3,
		`keyward_serve_requests_total{code="404",endpoint="other"}`:                1,
		`keyward_serve_request_duration_seconds_count{endpoint="POST /v1/verify"}`: 3,
		`keyward_serve_verdicts_total{verdict="verified"}`:                         3,
		`keyward_serve_verdicts_total{verdict="failed"}`:                           1,
		`keyward_serve_verdicts_total{verdict="error"}`:                            2, // registry down, by digest and by tag
		`keyward_serve_cache_hits_total{layer="singleflight"}`:                     1,
		`keyward_serve_cache_hits_total{layer="local"}`:                            1,
		`keyward_serve_cache_misses_total{layer="local"}`:                          4, // both concurrent ones
		`keyward_serve_verification_duration_seconds_count`:                        3, // a tag that does not resolve is not cached
		`keyward_serve_policy_reloads_total{result="success"}`:                     1,
		`keyward_serve_policy_reloads_total{result="failure"}`:                     2,
		`keyward_serve_cache_entries`:                                              3,
	} {
		if got := delta(name); got != want {
			t.Errorf("%s moved by %v, want %v", name, got, want)
		}
	}
	if got := m[`keyward_serve_registry_requests_total{registry="`+proxy.host+`"}`]; got < 4 || got != float64(proxy.requests.Load()) {
		t.Errorf("registry requests to %s: metric %v, the registry counted %d", proxy.host, got, proxy.requests.Load())
	}
	if got := m[`keyward_serve_registry_errors_total{registry="`+down+`"}`]; got < 1 {
		t.Errorf("registry errors of %s = %v, want the refused connection counted", down, got)
	}
	if m[`keyward_serve_cache_bytes`] <= 0 || m[`keyward_serve_signature_cache_bytes`] <= 0 {
		t.Errorf("cache gauges: verdicts %v bytes, signatures %v bytes", m[`keyward_serve_cache_bytes`], m[`keyward_serve_signature_cache_bytes`])
	}
	if got := delta(`keyward_serve_request_duration_seconds_bucket{endpoint="POST /v1/verify",le="10"}`); got != 3 {
		t.Errorf("latency bucket le=10 moved by %v, want 3", got)
	}
}

// TestVerdictClass checks the verdict label of each kind of result.
func TestVerdictClass(t *testing.T) {
	for want, r := range map[string]*verify.ReferenceResult{
		"verified": {Verified: true},
		"skipped":  {Verified: true, Skipped: true},
		"failed":   {Error: &verify.ReferenceError{Kind: verify.ErrorNoSignature}},
		"error":    {Error: &verify.ReferenceError{Kind: verify.ErrorRetrievalFailed}},
	} {
		if got := verdictClass(r); got != want {
			t.Errorf("verdictClass(%+v) = %s, want %s", r, got, want)
		}
	}
	var m *Metrics // a nil *Metrics records nothing, and does not panic
	m.PolicyReload(true)
	m.verdict(&verify.ReferenceResult{})
	_ = context.Background()
}
