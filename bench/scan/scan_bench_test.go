// Package scanbench is the benchmark of keyward scan (issue 13,
// "Benchmarks"; scripts/bench/scan.sh, run by make bench): ARTIFACTS
// (default 1,000) artifacts across REPOSITORIES (default 20) repositories
// of a registry process on 127.0.0.1, scanned with a trust policy in one
// run three ways, alternately:
//
//   - keyward: the built binary, `keyward scan --policy ... --trust-store
//     ... --output json HOST/scan`, a new process each round (wall time from
//     start to exit, every JSON line read);
//   - sequential (SigScan's design): the HTTP requests keyward scan made
//     (recorded through a proxy in an untimed run of the same command),
//     replayed one at a time, in the order keyward made them, over one
//     keep-alive connection, bodies read and discarded. It does none of
//     the parsing or verification, so it is a lower bound of a sequential
//     walker's time and the ratio to it is conservative;
//   - the floor: the same requests replayed by a bare concurrent client
//     with keyward scan's per-registry concurrency.
//
// Each comparison runs directly against the registry and, for each delay
// of -latencies, through a proxy process that holds every request for that
// long (a registry that is not on this machine: on 127.0.0.1 the
// registry's CPU, on cores the clients share, bounds every variant);
// -registry-concurrency compares values of keyward scan's flag, the floor
// following it.
//
// Then the peak RSS of keyward scan (getrusage of the exited process) on a
// quarter, half and all of the repositories. The goals of issue 13: at
// least 8x faster than the sequential walk, within 1.2x of the floor, and
// memory flat in the number of artifacts. The ratios are printed with the
// goals met or missed; none is asserted.
//
// Setup: signing with the notation CLI is slow, so only the artifacts of
// one repository (ARTIFACTS/REPOSITORIES, of which -unsigned are left
// unsigned) are pushed and signed, in a source repository the scan does
// not cover; each is then copied with its signature (oras.ExtendedCopy)
// into every scanned repository under a tag. Each scanned repository so
// holds the same digests: distinct artifacts to keyward scan, which keys
// them by repository and digest. Their signature envelopes are shared
// across repositories, so keyward's verifier, which remembers each
// envelope's integrity check, checks 40 envelopes rather than 800 (by default): a
// registry of distinct envelopes costs one more ECDSA verification per
// signature (certificate chains are validated once per chain either way).
package scanbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/internal/replay"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/timing"
	"github.com/keyward/keyward/scan"
)

var (
	rounds        = flag.Int("rounds", 3, "alternating rounds of the three variants")
	artifacts     = flag.Int("artifacts", 1000, "artifacts scanned (a multiple of -repositories)")
	repositories  = flag.Int("repositories", 20, "repositories the artifacts are spread over")
	unsigned      = flag.Int("unsigned", 10, "unsigned artifacts among each repository's")
	registryName  = flag.String("registry", "distribution", "registry process: distribution (referrers tag schema) or olareg (referrers API)")
	memRuns       = flag.Int("mem-runs", 2, "runs of keyward scan per size for the peak RSS (the largest is kept)")
	concurrencies = flag.String("registry-concurrency", "0", "comma-separated keyward scan --registry-concurrency values to measure, each with the floor at the same concurrency (0: keyward's default)")
	latencies     = flag.String("latencies", "0", "comma-separated delays added to every request by a proxy in front of the registry (0: direct), each measured in turn: a remote registry's round trip")
)

const policyJSON = `{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],
"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],
"trustedIdentities":["x509.subject: C=US, ST=WA, O=keyward-test"]}]}`

// world is the registry, its artifacts, and what keyward scan needs.
type world struct {
	reg        *testenv.Registry
	bin        string // keyward
	policy     string
	trustStore string
	repos      []string // scanned repositories, scan/rNN
	signed     int      // artifacts expected signed (and verified)
}

func setup(b *testing.B) *world {
	b.Helper()
	if *artifacts%*repositories != 0 || *unsigned > *artifacts / *repositories {
		b.Fatalf("-artifacts %d must be a multiple of -repositories %d, -unsigned at most their quotient", *artifacts, *repositories)
	}
	w := &world{bin: testenv.KeywardBinary(b)}
	switch *registryName {
	case "distribution":
		w.reg = testenv.StartDistribution(b)
	case "olareg":
		w.reg = testenv.StartOlareg(b)
	default:
		b.Fatalf("-registry %q: use distribution or olareg", *registryName)
	}
	n := testenv.NewNotation(b)
	root := testpki.Root(b, "bench scan root")
	leaf := root.Leaf(b, "bench scan signer")
	n.AddLocalKey(b, "bench", leaf, root)
	n.AddTrustStore(b, "ca", "bench", root.Cert)
	w.policy = testpki.WriteFile(b, b.TempDir(), "policy.json", []byte(policyJSON), 0o644)
	w.trustStore = filepath.Join(n.ConfigDir, "truststore")

	perRepo := *artifacts / *repositories
	originals := make([]string, perRepo)
	for i := range originals {
		originals[i], _ = testenv.PushArtifact(b, w.reg, "src/app")
	}
	args := []string{"sign", "--insecure-registry"}
	workers := 4
	if w.reg.Referrers {
		// olareg v0.1.2 loses referrers of concurrent signatures (see
		// bench/verify).
		args, workers = append(args, "--force-referrers-tag=false"), 1
	}
	toSign := originals[:perRepo-*unsigned]
	errs := make([]error, len(toSign))
	timing.Parallel(len(toSign), workers, func(i int) {
		if _, stderr, err := n.Run(b, append(args, toSign[i])...); err != nil {
			errs[i] = fmt.Errorf("notation sign %s: %v\n%s", toSign[i], err, stderr)
		}
	})
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	w.signed = len(toSign) * *repositories

	// Copy every original, with its signature, into every repository.
	client := &auth.Client{Client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, Cache: auth.NewCache()}
	repo := func(name string) *remote.Repository {
		r, err := remote.NewRepository(w.reg.Host + "/" + name)
		if err != nil {
			b.Fatal(err)
		}
		r.PlainHTTP, r.Client = true, client
		return r
	}
	src := repo("src/app")
	for i := range *repositories {
		w.repos = append(w.repos, fmt.Sprintf("scan/r%02d", i))
	}
	type job struct{ repo, ref, tag string }
	var jobs []job
	for _, r := range w.repos {
		for i, ref := range originals {
			jobs = append(jobs, job{r, ref, fmt.Sprintf("v%03d", i)})
		}
	}
	errs = make([]error, len(jobs))
	copyWorkers := 8
	if w.reg.Referrers {
		copyWorkers = 1
	}
	timing.Parallel(len(jobs), copyWorkers, func(i int) {
		j := jobs[i]
		_, dgst, _ := strings.Cut(j.ref, "@")
		if _, err := oras.ExtendedCopy(context.Background(), src, dgst, repo(j.repo), j.tag, oras.DefaultExtendedCopyOptions); err != nil {
			errs[i] = fmt.Errorf("copy %s to %s:%s: %w", j.ref, j.repo, j.tag, err)
		}
	})
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return w
}

// run is one keyward scan process: its wall time and peak RSS.
type run struct {
	wall   time.Duration
	maxRSS int64 // bytes
}

// scanTargets runs keyward scan on targets (host/repository prefixes) and
// fails unless it reported want artifacts, w.signed of them signed and
// verified (when want is every artifact), and nothing in error.
func (w *world) scanTargets(b *testing.B, want, concurrency int, targets ...string) run {
	b.Helper()
	args := []string{"scan", "--policy", w.policy, "--trust-store", w.trustStore, "--output", "json", "--progress", "never", "--plain-http"}
	if concurrency > 0 {
		args = append(args, "--registry-concurrency", fmt.Sprint(concurrency))
	}
	args = append(args, targets...)
	cmd := exec.Command(w.bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	var records, signed, verified, failed int
	var firstErr string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r scan.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			b.Fatalf("keyward scan: a line is not a record: %v", err)
		}
		records++
		switch r.Status {
		case scan.StatusSigned:
			signed++
		case scan.StatusError:
			failed++
			if firstErr == "" {
				firstErr = r.Reference + ": " + strings.Join(r.Errors, "; ")
			}
		}
		if r.Verification != nil && r.Verification.Verified {
			verified++
		}
	}
	err = cmd.Wait()
	wall := time.Since(start)
	// Exit status 1 is expected: the unsigned artifacts fail the policy.
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 1 || *unsigned == 0) {
		b.Fatalf("keyward scan: %v\n%s", err, stderr.String())
	}
	perRepo := *artifacts / *repositories
	wantSigned := want / perRepo * (perRepo - *unsigned)
	if records != want || failed != 0 || signed != wantSigned || verified != wantSigned {
		b.Fatalf("keyward scan: %d records (want %d), %d signed and %d verified (want %d), %d in error (first: %s)\n%s",
			records, want, signed, verified, wantSigned, failed, firstErr, stderr.String())
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // kilobytes on Linux
	}
	return run{wall: wall, maxRSS: rss}
}

// delayed starts a reverse proxy to registryHost that holds every request
// for d before forwarding it: the round trip of a registry not on this
// machine. It is a process of its own (this test binary, see TestMain), so
// that its CPU is not taken from the clients measured in this process. It
// returns the proxy's host.
func delayed(b *testing.B, registryHost string, d time.Duration) string {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), delayProxyEnv+"="+registryHost+"|"+d.String())
	cmd.SysProcAttr = testenv.ChildProcAttr()
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close() // the proxy exits when its standard input closes
		cmd.Wait()
	})
	host, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatalf("delay proxy: %v", err)
	}
	return strings.TrimSpace(host)
}

// delayProxyEnv makes this test binary a delaying proxy (TestMain):
// "registryHost|delay".
const delayProxyEnv = "SCANBENCH_DELAY_PROXY"

// TestMain runs the benchmarks, or the delaying proxy when delayProxyEnv
// is set: it listens on 127.0.0.1, prints its host on standard output and
// serves until its standard input closes.
func TestMain(m *testing.M) {
	spec := os.Getenv(delayProxyEnv)
	if spec == "" {
		os.Exit(m.Run())
	}
	target, delay, _ := strings.Cut(spec, "|")
	d, err := time.ParseDuration(delay)
	if err != nil {
		fmt.Fprintf(os.Stderr, "delay proxy: %v\n", err)
		os.Exit(2)
	}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	proxy.Transport = proxyTransport()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(d)
		proxy.ServeHTTP(w, r)
	}))
	fmt.Println(strings.TrimPrefix(srv.URL, "http://"))
	io.Copy(io.Discard, os.Stdin)
	srv.Close()
	os.Exit(0)
}

// proxyTransport keeps enough idle connections to the registry for every
// client's concurrency (http.DefaultTransport keeps 2 per host).
func proxyTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return tr
}

// BenchmarkScan measures keyward scan beside the sequential walk and the
// floor, then its peak RSS at a quarter, half and all of the artifacts.
func BenchmarkScan(b *testing.B) {
	start := time.Now()
	w := setup(b)
	fmt.Printf("\n%s: %d artifacts (%d signed by notation, copied with their signatures) in %d repositories, set up in %v\n",
		*registryName, *artifacts, w.signed, *repositories, time.Since(start).Round(time.Millisecond))

	// One untimed run through the recording proxy: keyward scan's requests.
	rec := replay.NewRecorder(b, w.reg.Host, proxyTransport())
	w.scanTargets(b, *artifacts, 0, rec.Host()+"/scan")
	reqs := rec.Take()
	n := *artifacts
	fmt.Printf("keyward scan's requests: %.2f per artifact (%s)\n", float64(len(reqs))/float64(n), kinds(reqs))

	for i := 0; i < b.N; i++ {
		for _, section := range sections(b) {
			latency, concurrency := section.latency, section.concurrency
			flagValue := concurrency
			if concurrency == 0 {
				concurrency = scan.DefaultRegistryConcurrency
			}
			host := w.reg.Host
			if latency > 0 {
				host = delayed(b, w.reg.Host, latency)
			}
			s := timing.Alternate(*rounds, []string{"keyward", "sequential", "floor"}, func(v string) time.Duration {
				switch v {
				case "keyward":
					return w.scanTargets(b, n, flagValue, host+"/scan").wall
				case "sequential":
					d, err := replay.Replay(host, reqs, 1)
					if err != nil {
						b.Fatalf("replay: %v", err)
					}
					return d
				}
				d, err := replay.Replay(host, reqs, concurrency)
				if err != nil {
					b.Fatalf("replay: %v", err)
				}
				return d
			})
			fmt.Printf("%s, %d artifacts, %d repositories, %v added per request, median of %d alternating rounds\n", *registryName, n, *repositories, latency, *rounds)
			fmt.Printf("  %-58s %10s %12s %10s\n", "variant", "wall", "artifacts/s", "requests")
			rows := []struct{ key, label string }{
				{"keyward", fmt.Sprintf("keyward scan --policy -o json (process, registry conc. %d)", concurrency)},
				{"sequential", "sequential walk: its requests one at a time"},
				{"floor", fmt.Sprintf("floor: its requests, bare client (%d)", concurrency)},
			}
			for _, r := range rows {
				m := s[r.key].Median()
				fmt.Printf("  %-58s %7.0f ms %12.0f %10d\n", r.label, timing.Millis(m), float64(n)/m.Seconds(), len(reqs))
			}
			kw := s["keyward"].Median()
			seq, fl := timing.Ratio(s["sequential"].Median(), kw), timing.Ratio(kw, s["floor"].Median())
			fmt.Printf("  keyward vs sequential walk: %5.1fx faster (goal >= 8x: %s)\n", seq, timing.Met(seq >= 8))
			fmt.Printf("  keyward / floor:            %5.2fx (goal <= 1.2x: %s)\n", fl, timing.Met(fl <= 1.2))
			suffix := fmt.Sprintf("-c%d", concurrency)
			if latency > 0 {
				suffix += "-" + latency.String()
			}
			b.ReportMetric(seq, "x-sequential"+suffix)
			b.ReportMetric(fl, "x-floor"+suffix)
		}

		if *memRuns == 0 {
			continue
		}
		// Peak RSS at a quarter, half and all of the repositories.
		fmt.Printf("  peak RSS of keyward scan (largest of %d runs):\n", *memRuns)
		var rss []int64
		for _, q := range []int{4, 2, 1} {
			k := *repositories / q
			var targets []string
			for _, r := range w.repos[:k] {
				targets = append(targets, w.reg.Host+"/"+r)
			}
			var peak int64
			for range *memRuns {
				peak = max(peak, w.scanTargets(b, k**artifacts / *repositories, 0, targets...).maxRSS)
			}
			rss = append(rss, peak)
			fmt.Printf("    %5d artifacts: %6.1f MiB\n", k**artifacts / *repositories, float64(peak)/(1<<20))
		}
		growth := float64(rss[2]) / float64(rss[0])
		fmt.Printf("  RSS at %d / at %d artifacts: %.2fx (goal flat, <= 1.2x: %s)\n", *artifacts, *artifacts/4, growth, timing.Met(growth <= 1.2))
		b.ReportMetric(growth, "x-rss-growth")
		b.ReportMetric(float64(rss[2])/(1<<20), "MiB-rss")
	}
}

// section is one comparison: a delay per request and keyward scan's
// --registry-concurrency (0: its default).
type section struct {
	latency     time.Duration
	concurrency int
}

// sections are the comparisons -latencies and -registry-concurrency ask.
func sections(b *testing.B) []section {
	b.Helper()
	var out []section
	for _, l := range strings.Split(*latencies, ",") {
		latency, err := time.ParseDuration(strings.TrimSpace(l))
		if err != nil {
			b.Fatalf("-latencies %q: %v", *latencies, err)
		}
		for _, c := range strings.Split(*concurrencies, ",") {
			var n int
			if _, err := fmt.Sscan(strings.TrimSpace(c), &n); err != nil || n < 0 {
				b.Fatalf("-registry-concurrency %q: want numbers, 0 for the default", *concurrencies)
			}
			out = append(out, section{latency, n})
		}
	}
	return out
}

// kinds counts requests by method and kind of path, as "GET manifest by
// tag 1000, ...".
func kinds(reqs []replay.Request) string {
	counts := map[string]int{}
	var order []string
	for _, q := range reqs {
		p, _, _ := strings.Cut(q.URI, "?")
		var k string
		switch {
		case strings.HasSuffix(p, "/_catalog"):
			k = "catalog"
		case strings.HasSuffix(p, "/tags/list"):
			k = "tags/list"
		case strings.Contains(p, "/referrers/"):
			k = "referrers API"
		case strings.Contains(p, "/blobs/"):
			k = "blob"
		case strings.Contains(p, "/manifests/sha256:"):
			k = "manifest by digest"
		case strings.Contains(p, "/manifests/sha256-"):
			k = "referrers tag"
		case strings.Contains(p, "/manifests/"):
			k = "manifest by tag"
		default:
			k = "other"
		}
		k = q.Method + " " + k
		if q.Status >= 400 {
			k += fmt.Sprintf(" (%d)", q.Status)
		}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
	}
	return strings.Join(parts, ", ")
}
