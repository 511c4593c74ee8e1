// Package servebench is the benchmark of keyward serve (scripts/bench/serve.sh,
// run by make bench), issue 12's "Benchmarks" section:
//
//   - BenchmarkServe: admission latency, p50 and p99, client-side (request
//     sent to body read, by this process over keep-alive connections) and
//     server-side (keyward's Server-Timing header: handler entry to status
//     line; Ratify reports none), for IMAGES signed images in one registry
//     process on 127.0.0.1, one image per request as an admission of a
//     one-container pod asks. Cold: a fresh server process (and, for Ratify,
//     a fresh ORAS cache folder), each image asked once; warm: then each
//     image asked WARM_PASSES more times, every answer from the verdict
//     cache. At concurrency 1, 16 and 64 (client workers), keyward serve and
//     `ratify serve` v1.4.0 (Gatekeeper provider, --cache-enabled) on the
//     same images and registry, alternately in one run, with the HTTP floor:
//     the registry requests of one verification (HEAD manifest, GET
//     referrers, GET signature manifest, GET envelope blob) made in turn by
//     a bare Go client at the same concurrency.
//   - BenchmarkCacheMemory: the resident set of a process holding CACHE
//     verdicts (default 100,000) in a serve.Cache: copies of a real verdict
//     of keyward serve, each with its own digest, under the keys the server
//     builds. Filling the cache through the API would need 100,000 signed
//     artifacts; the cache is what grows with them.
//
// It prints the quantiles, throughput, the ratios and the goals of issue 12
// met or missed; it asserts only that keyward's verdicts are right.
package servebench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/timing"
	"github.com/keyward/keyward/serve"
	"github.com/keyward/keyward/verify"
)

var (
	images        = flag.Int("images", 200, "signed images in the registry")
	repositories  = flag.Int("repositories", 10, "repositories the images are spread over")
	concurrencies = flag.String("concurrency", "1,16,64", "client concurrencies, comma-separated")
	warmPasses    = flag.Int("warm-passes", 3, "warm passes over every image after the cold one")
	rounds        = flag.Int("rounds", 1, "alternating rounds (each: every concurrency, both servers, the floor)")
	registryName  = flag.String("registry", "olareg", "registry process: olareg (referrers API) or distribution (referrers tag schema)")
	keywardAPI    = flag.String("keyward-api", "verify", "keyward endpoint asked: verify (POST /v1/verify), gatekeeper (POST /v1/gatekeeper/verify), admission (POST /v1/admission/validate, an AdmissionReview)")
	withRatify    = flag.Bool("ratify", true, "measure ratify serve v1.4.0 beside keyward (skipped, saying so, when it is not built)")
	cacheEntries  = flag.Int("cache-entries", 100000, "verdicts BenchmarkCacheMemory fills the cache with")
)

const policyJSON = `{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],
"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],
"trustedIdentities":["x509.subject: C=US, ST=WA, O=keyward-test, CN=bench serve signer"]}]}`

// image is one signed image and what its verification reads.
type image struct {
	ref                   string // host/repo@sha256:...
	repo, digest          string
	signature, envelope   string // digests of the signature manifest and its envelope blob
	referrersURL, refsAcc string // how the referrers are listed, and its Accept
}

// fixture is the registry, the signed images, the trust policy and store.
type fixture struct {
	reg           *testenv.Registry
	n             *testenv.Notation
	policy, store string // keyward's files
	certs         string // the trust store folder Ratify reads
	images        []image
	home          string // HOME of keyward serve
}

func newFixture(b *testing.B) *fixture {
	b.Helper()
	f := &fixture{n: testenv.NewNotation(b), home: b.TempDir()}
	root := testpki.Root(b, "bench serve root")
	leaf := root.Leaf(b, "bench serve signer")
	f.n.AddLocalKey(b, "bench", leaf, root)
	f.n.AddTrustStore(b, "ca", "bench", root.Cert)
	f.n.SetTrustPolicy(b, []byte(policyJSON))
	f.policy = testpki.WriteFile(b, b.TempDir(), "policy.json", []byte(policyJSON), 0o644)
	f.store = filepath.Join(f.n.ConfigDir, "truststore")
	f.certs = filepath.Join(f.store, "x509", "ca", "bench")
	switch *registryName {
	case "olareg":
		f.reg = testenv.StartOlareg(b)
	case "distribution":
		f.reg = testenv.StartDistribution(b)
	default:
		b.Fatalf("-registry %q: use olareg or distribution", *registryName)
	}
	return f
}

// populate pushes and signs n images (notation sign, local key), then
// reads what each verification fetches, for the floor.
func (f *fixture) populate(b *testing.B, n int) {
	b.Helper()
	refs := make([]string, n)
	for i := range refs {
		refs[i], _ = testenv.PushArtifact(b, f.reg, fmt.Sprintf("bench/app%d", i%*repositories))
	}
	args := []string{"sign", "--insecure-registry"}
	if f.reg.Referrers {
		args = append(args, "--force-referrers-tag=false")
	}
	// As bench/verify: one signature at a time with olareg v0.1.2 (it loses
	// referrers pushed to several repositories at once), one notation per
	// repository with the tag schema.
	workers := 4
	if f.reg.Referrers {
		workers = 1
	}
	errs := make([]error, n)
	timing.Parallel(*repositories, workers, func(repo int) {
		for i := repo; i < n; i += *repositories {
			if _, stderr, err := f.n.Run(b, append(args, refs[i])...); err != nil {
				errs[i] = fmt.Errorf("notation sign %s: %v\n%s", refs[i], err, stderr)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{Timeout: 30 * time.Second}
	f.images = make([]image, n)
	for i, ref := range refs {
		rest := strings.TrimPrefix(ref, f.reg.Host+"/")
		repo, dgst, _ := strings.Cut(rest, "@")
		im := image{ref: ref, repo: repo, digest: dgst}
		sigs := testenv.Referrers(b, f.reg, ref)
		if len(sigs) != 1 || sigs[0].ArtifactType != testenv.NotationSignatureType {
			b.Fatalf("%s: %d referrers, want its one notation signature", ref, len(sigs))
		}
		im.signature = sigs[0].Digest.String()
		if f.reg.Referrers {
			im.referrersURL, im.refsAcc = "/v2/"+repo+"/referrers/"+dgst, ocispec.MediaTypeImageIndex
		} else {
			im.referrersURL, im.refsAcc = "/v2/"+repo+"/manifests/"+strings.Replace(dgst, ":", "-", 1), ocispec.MediaTypeImageIndex
		}
		var m ocispec.Manifest
		if err := getJSON(client, f.reg.URL()+"/v2/"+repo+"/manifests/"+im.signature, ocispec.MediaTypeImageManifest, &m); err != nil || len(m.Layers) != 1 {
			b.Fatalf("signature manifest of %s: %v", ref, err)
		}
		im.envelope = m.Layers[0].Digest.String()
		f.images[i] = im
	}
}

func getJSON(client *http.Client, u, accept string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(v)
}

// answer is one request's outcome.
type answer struct {
	allowed bool
	server  time.Duration // -1: the server did not say
	err     error
}

// target is a server under measurement.
type target interface {
	name() string
	start(b *testing.B)
	stop()
	pid() int
	ask(ctx context.Context, client *http.Client, im image) answer
}

// keyward is keyward serve, a process of this checkout's cmd/keyward.
type keyward struct {
	f    *fixture
	proc *testenv.KeywardServe
}

func (k *keyward) name() string { return "keyward serve (" + *keywardAPI + ")" }
func (k *keyward) pid() int     { return k.proc.Pid() }
func (k *keyward) stop()        { k.proc.Stop() }

func (k *keyward) start(b *testing.B) {
	k.proc = testenv.StartKeywardServe(b, map[string]any{
		"policy":   map[string]any{"trustPolicy": k.f.policy, "trustStore": k.f.store},
		"registry": map[string]any{"plainHTTPHosts": []string{k.f.reg.Host}},
		"timeouts": map[string]any{"request": "25s", "registryRequest": "20s"},
		"cache":    map[string]any{"ttl": "1h", "failureTTL": "1h", "maxEntries": 100000},
	}, "HOME="+k.f.home, "DOCKER_CONFIG="+filepath.Join(k.f.home, "docker"))
}

func (k *keyward) ask(ctx context.Context, client *http.Client, im image) answer {
	var path string
	var body []byte
	switch *keywardAPI {
	case "gatekeeper":
		path, body = "/v1/gatekeeper/verify", providerRequest(im.ref)
	case "admission":
		path, body = "/v1/admission/validate", AdmissionReview(im.ref, randomUID())
	default:
		path, body = "/v1/verify", fmt.Appendf(nil, `{"references":[%q]}`, im.ref)
	}
	data, hdr, err := post(ctx, client, k.proc.URL+path, body)
	if err != nil {
		return answer{err: err}
	}
	a := answer{server: serverTiming(hdr)}
	switch *keywardAPI {
	case "gatekeeper":
		var pr struct {
			Response struct {
				Items []struct {
					Value struct {
						Verified bool `json:"verified"`
					} `json:"value"`
				} `json:"items"`
			} `json:"response"`
		}
		if err := json.Unmarshal(data, &pr); err != nil || len(pr.Response.Items) != 1 {
			return answer{err: fmt.Errorf("not a ProviderResponse of one item: %.300s", data)}
		}
		a.allowed = pr.Response.Items[0].Value.Verified
	case "admission":
		var ar struct {
			Response *struct {
				Allowed bool `json:"allowed"`
			} `json:"response"`
		}
		if err := json.Unmarshal(data, &ar); err != nil || ar.Response == nil {
			return answer{err: fmt.Errorf("not an AdmissionReview response: %.300s", data)}
		}
		a.allowed = ar.Response.Allowed
	default:
		var vr serve.VerifyResponse
		if err := json.Unmarshal(data, &vr); err != nil || len(vr.Results) != 1 {
			return answer{err: fmt.Errorf("not a VerifyResponse of one result: %.300s", data)}
		}
		a.allowed = vr.Results[0].Verified
	}
	return a
}

// ratify is `ratify serve` v1.4.0 with its verdict cache on.
type ratify struct {
	f    *fixture
	proc *testenv.Ratify
}

func (r *ratify) name() string { return "ratify serve v1.4.0 (gatekeeper)" }
func (r *ratify) pid() int     { return r.proc.Pid() }
func (r *ratify) stop()        { r.proc.Stop() }

func (r *ratify) start(b *testing.B) {
	r.proc = testenv.StartRatify(b, testenv.RatifyOptions{
		TrustPolicy:   []byte(policyJSON),
		Certs:         []string{r.f.certs},
		PlainHTTP:     true,
		CacheTTL:      time.Hour,
		VerifyTimeout: 25 * time.Second,
	})
}

func (r *ratify) ask(ctx context.Context, client *http.Client, im image) answer {
	items, err := testenv.GatekeeperVerify(ctx, client, r.proc.URL+testenv.RatifyVerifyPath, []string{im.ref})
	if err != nil {
		return answer{err: err}
	}
	v, err := testenv.ParseRatifyValue(items[0])
	if err != nil {
		return answer{server: -1} // Ratify's error for the key: not allowed
	}
	return answer{allowed: v.IsSuccess, server: -1}
}

// providerRequest is the Gatekeeper external data request for one key.
func providerRequest(key string) []byte {
	return fmt.Appendf(nil, `{"apiVersion":"externaldata.gatekeeper.sh/v1beta1","kind":"ProviderRequest","request":{"keys":[%q]}}`, key)
}

// AdmissionReview is the admission.k8s.io/v1 AdmissionReview a
// kube-apiserver sends a validating webhook for the creation of a pod in
// namespace default with one container running image.
func AdmissionReview(image, uid string) []byte {
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "bench-" + uid[:8], "namespace": "default", "uid": uid},
		"spec":     map[string]any{"containers": []any{map[string]any{"name": "app", "image": image}}},
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid":             uid,
			"kind":            map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"resource":        map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"requestKind":     map[string]string{"group": "", "version": "v1", "kind": "Pod"},
			"requestResource": map[string]string{"group": "", "version": "v1", "resource": "pods"},
			"name":            "bench-" + uid[:8],
			"namespace":       "default",
			"operation":       "CREATE",
			"userInfo":        map[string]any{"username": "system:serviceaccount:kube-system:replicaset-controller"},
			"object":          pod,
			"oldObject":       nil,
			"dryRun":          false,
			"options":         map[string]string{"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
		},
	}
	data, _ := json.Marshal(review)
	return data
}

func randomUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// post sends body and reads the whole answer, which must be 200.
func post(ctx context.Context, client *http.Client, u string, body []byte) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("POST %s: %s: %.300s", u, resp.Status, data)
	}
	return data, resp.Header, nil
}

// serverTiming reads "app;dur=<ms>" of serve.ServerTimingHeader; -1 when
// absent.
func serverTiming(h http.Header) time.Duration {
	v, ok := strings.CutPrefix(h.Get(serve.ServerTimingHeader), "app;dur=")
	if !ok {
		return -1
	}
	ms, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return -1
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// phase is what one pass measured.
type phase struct {
	client, server timing.Samples
	wall           time.Duration
	n              int // requests
	allowed, errs  int
	firstErr       error
}

func (p *phase) add(q phase) {
	p.client = append(p.client, q.client...)
	p.server = append(p.server, q.server...)
	p.wall += q.wall
	p.n += q.n
	p.allowed += q.allowed
	p.errs += q.errs
	if p.firstErr == nil {
		p.firstErr = q.firstErr
	}
}

// newClient is a keep-alive client for c concurrent requests, as an API
// server keeps connections to a webhook.
func newClient(c int) (*http.Client, func()) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = c
	tr.MaxIdleConns = c + 10
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, tr.CloseIdleConnections
}

// measure asks t for every image in order (passes times) with c workers.
func measure(t target, client *http.Client, imgs []image, passes, c int) phase {
	jobs := make([]image, 0, len(imgs)*passes)
	for range passes {
		jobs = append(jobs, imgs...)
	}
	lat := make([]time.Duration, len(jobs))
	ans := make([]answer, len(jobs))
	start := time.Now()
	timing.Parallel(len(jobs), c, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s := time.Now()
		ans[i] = t.ask(ctx, client, jobs[i])
		lat[i] = time.Since(s)
	})
	p := phase{wall: time.Since(start), n: len(jobs), client: lat}
	for _, a := range ans {
		switch {
		case a.err != nil:
			p.errs++
			if p.firstErr == nil {
				p.firstErr = a.err
			}
		case a.allowed:
			p.allowed++
		}
		if a.server >= 0 && a.err == nil {
			p.server = append(p.server, a.server)
		}
	}
	return p
}

// floor makes the registry requests of one verification for every image
// (those keyward serve makes: HEAD manifest, GET referrers, GET signature
// manifest, GET envelope blob; without the referrers API the 404 of the
// referrers API and the GET of the referrers tag),
// each image's in turn, c images at a time, and times each image.
func (f *fixture) floor(c int) phase {
	client, done := newClient(c)
	defer done()
	base := f.reg.URL()
	do := func(method, path, accept string, want int) error {
		req, _ := http.NewRequest(method, base+path, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != want {
			err = fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return err
	}
	lat := make([]time.Duration, len(f.images))
	errs := make([]error, len(f.images))
	start := time.Now()
	timing.Parallel(len(f.images), c, func(i int) {
		im := f.images[i]
		s := time.Now()
		type request struct {
			method, path, accept string
			want                 int
		}
		reqs := []request{{http.MethodHead, "/v2/" + im.repo + "/manifests/" + im.digest, ocispec.MediaTypeImageManifest, http.StatusOK}}
		if !f.reg.Referrers {
			// keyward asks the referrers API first, then falls back to
			// the tag schema (5 requests in all).
			reqs = append(reqs, request{http.MethodGet, "/v2/" + im.repo + "/referrers/" + im.digest, "", http.StatusNotFound})
		}
		reqs = append(reqs,
			request{http.MethodGet, im.referrersURL, im.refsAcc, http.StatusOK},
			request{http.MethodGet, "/v2/" + im.repo + "/manifests/" + im.signature, ocispec.MediaTypeImageManifest, http.StatusOK},
			request{http.MethodGet, "/v2/" + im.repo + "/blobs/" + im.envelope, "", http.StatusOK})
		for _, q := range reqs {
			if err := do(q.method, q.path, q.accept, q.want); err != nil {
				errs[i] = err
				return
			}
		}
		lat[i] = time.Since(s)
	})
	p := phase{wall: time.Since(start), n: len(f.images), client: lat, allowed: len(f.images)}
	for _, err := range errs {
		if err != nil {
			p.errs++
			p.allowed--
			if p.firstErr == nil {
				p.firstErr = err
			}
		}
	}
	return p
}

// result is the measurements of one target at one concurrency.
type result struct{ cold, warm phase }

// BenchmarkServe measures keyward serve beside ratify serve and the floor.
func BenchmarkServe(b *testing.B) {
	conc, err := parseInts(*concurrencies)
	if err != nil {
		b.Fatalf("-concurrency: %v", err)
	}
	f := newFixture(b)
	setup := time.Now()
	f.populate(b, *images)
	fmt.Printf("\n%s: %d images in %d repositories pushed and signed by notation in %v\n",
		*registryName, len(f.images), *repositories, time.Since(setup).Round(time.Millisecond))

	targets := []target{&keyward{f: f}}
	if *withRatify {
		ratifyBin := filepath.Join(testenv.ToolsDir(b), "ratify")
		if _, err := os.Stat(ratifyBin); err != nil {
			if testenv.InCI() {
				b.Fatalf("ratify is not in %s (CI=true): run make tools", testenv.ToolsDir(b))
			}
			fmt.Printf("ratify is not built (%s): run `make tools` (scripts/tools-ratify.sh); measuring keyward and the floor only\n", ratifyBin)
		} else {
			targets = append(targets, &ratify{f: f})
		}
	}
	for i := 0; i < b.N; i++ {
		res := map[string]map[int]*result{}
		floors := map[int]*phase{}
		rss := map[string]int64{}
		for r := range *rounds {
			for ci, c := range conc {
				// Rotate the order every concurrency and round, so that no
				// server always runs first.
				order := append([]target(nil), targets...)
				if (r+ci)%2 == 1 {
					for a, z := 0, len(order)-1; a < z; a, z = a+1, z-1 {
						order[a], order[z] = order[z], order[a]
					}
				}
				for _, t := range order {
					t.start(b)
					client, done := newClient(c)
					cold := measure(t, client, f.images, 1, c)
					warm := measure(t, client, f.images, *warmPasses, c)
					if v := testenv.RSS(t.pid()); v > rss[t.name()] {
						rss[t.name()] = v
					}
					done()
					t.stop()
					if res[t.name()] == nil {
						res[t.name()] = map[int]*result{}
					}
					if res[t.name()][c] == nil {
						res[t.name()][c] = &result{}
					}
					res[t.name()][c].cold.add(cold)
					res[t.name()][c].warm.add(warm)
				}
				fl := f.floor(c)
				if floors[c] == nil {
					floors[c] = &phase{}
				}
				floors[c].add(fl)
			}
		}
		report(b, targets, conc, res, floors, rss)
	}
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, n)
	}
	return out, nil
}

func report(b *testing.B, targets []target, conc []int, res map[string]map[int]*result, floors map[int]*phase, rss map[string]int64) {
	kw := targets[0].name()
	var rt string
	if len(targets) > 1 {
		rt = targets[1].name()
	}
	fmt.Printf("%d images, %d round(s); cold = fresh server process, each image once; warm = %d more passes, cached\n", *images, *rounds, *warmPasses)
	fmt.Printf("client = request sent to answer read (this process); server = keyward's Server-Timing header (Ratify reports none)\n")
	for _, c := range conc {
		fmt.Printf("concurrency %d\n", c)
		fmt.Printf("  %-44s %5s %10s %10s %10s %10s %9s %9s\n", "variant", "phase", "p50 client", "p99 client", "p50 server", "p99 server", "images/s", "allowed")
		row := func(name, ph string, p *phase) {
			fmt.Printf("  %-44s %5s %10s %10s %10s %10s %9.0f %5d/%d\n", name, ph,
				ms(p.client.Median()), ms(p.client.Quantile(0.99)), msOr(p.server, 0.5), msOr(p.server, 0.99),
				float64(p.n)/p.wall.Seconds(), p.allowed, p.n)
			if p.errs > 0 {
				fmt.Printf("  %-44s %5s %d errors, the first: %v\n", "", "", p.errs, p.firstErr)
			}
		}
		for _, t := range targets {
			r := res[t.name()][c]
			row(t.name(), "cold", &r.cold)
			row(t.name(), "warm", &r.warm)
		}
		row("floor: its registry requests, bare client", "cold", floors[c])

		k := res[kw][c]
		if k.cold.allowed != k.cold.n || k.warm.allowed != k.warm.n {
			b.Errorf("concurrency %d: keyward allowed %d/%d cold and %d/%d warm signed images; want all (first error: %v)",
				c, k.cold.allowed, k.cold.n, k.warm.allowed, k.warm.n, k.cold.firstErr)
		}
		sp99, cp99 := k.warm.server.Quantile(0.99), k.warm.client.Quantile(0.99)
		fmt.Printf("  keyward warm p99 < 2 ms:           server-side %s (%s), client-side %s (%s)\n", ms(sp99), timing.Met(sp99 < 2*time.Millisecond), ms(cp99), timing.Met(cp99 < 2*time.Millisecond))
		fl := timing.Ratio(k.cold.client.Median(), floors[c].client.Median())
		fmt.Printf("  keyward cold p50 / floor p50:      %.2fx (goal <= 1.2x: %s)\n", fl, timing.Met(fl <= 1.2))
		b.ReportMetric(fl, fmt.Sprintf("x-floor-c%d", c))
		if rt != "" {
			r := res[rt][c]
			tk := float64(k.cold.n) / k.cold.wall.Seconds()
			tr := float64(r.cold.n) / r.cold.wall.Seconds()
			x := tk / tr
			fmt.Printf("  keyward / ratify cold throughput:  %.1fx (goal >= 5x: %s)\n", x, timing.Met(x >= 5))
			fmt.Printf("  keyward / ratify warm p50 client:  %.2fx the time\n", timing.Ratio(k.warm.client.Median(), r.warm.client.Median()))
			if r.cold.allowed != r.cold.n {
				fmt.Printf("  note: ratify allowed %d/%d signed images cold\n", r.cold.allowed, r.cold.n)
			}
			b.ReportMetric(x, fmt.Sprintf("x-ratify-c%d", c))
		}
	}
	for _, t := range targets {
		fmt.Printf("peak RSS of %s after a warm pass: %.1f MiB\n", t.name(), float64(rss[t.name()])/(1<<20))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func msOr(s timing.Samples, q float64) string {
	if len(s) == 0 {
		return "-"
	}
	return ms(s.Quantile(q))
}

// liveHeap is the heap marked live by the last GC.
func liveHeap() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64())
}

// BenchmarkCacheMemory fills a serve.Cache with -cache-entries copies of a
// real verdict and prints the process's resident set.
func BenchmarkCacheMemory(b *testing.B) {
	f := newFixture(b)
	f.populate(b, 1)
	s, err := serve.New(&serve.Config{
		Listen: "127.0.0.1:0", PlainHTTP: true,
		Policy:   serve.PolicySet{TrustPolicy: f.policy, TrustStore: f.store},
		Registry: serve.RegistryConfig{PlainHTTPHosts: []string{f.reg.Host}},
		Cache:    serve.CacheConfig{TTL: time.Hour, FailureTTL: time.Hour, MaxEntries: 10},
	}, serve.Options{Getenv: func(k string) string {
		if k == "HOME" {
			return f.home
		}
		return ""
	}})
	if err != nil {
		b.Fatal(err)
	}
	model := s.Verify(context.Background(), f.images[0].ref)
	if !model.Verified {
		b.Fatalf("the template verdict did not verify: %+v", model.Error)
	}
	template, err := json.Marshal(model)
	if err != nil {
		b.Fatal(err)
	}
	oldHex := strings.TrimPrefix(f.images[0].digest, "sha256:")
	policyDigest := strings.Repeat("a", 64)
	storeDigest := strings.Repeat("b", 64)

	for i := 0; i < b.N; i++ {
		runtime.GC()
		debug.FreeOSMemory()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		rssBefore := testenv.RSS(os.Getpid())
		liveBefore := liveHeap()
		n := *cacheEntries
		c := serve.NewCache(context.Background(), serve.CacheConfig{TTL: time.Hour, FailureTTL: time.Hour, MaxEntries: n})
		start := time.Now()
		for j := range n {
			h := make([]byte, 32)
			rand.Read(h)
			newHex := hex.EncodeToString(h)
			data := bytes.ReplaceAll(template, []byte(oldHex), []byte(newHex))
			key := strings.Join([]string{model.Scope, "sha256:" + newHex, policyDigest, storeDigest}, "\x00")
			c.Do(context.Background(), key, time.Minute, func(context.Context) *verify.ReferenceResult {
				var r verify.ReferenceResult
				if err := json.Unmarshal(data, &r); err != nil {
					b.Fatalf("entry %d: %v", j, err)
				}
				return &r
			}, func(err error) *verify.ReferenceResult { b.Fatalf("entry %d: %v", j, err); return nil })
		}
		fill := time.Since(start)
		if c.Len() != n {
			b.Fatalf("the cache holds %d verdicts, want %d", c.Len(), n)
		}
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		rss := testenv.RSS(os.Getpid())
		debug.FreeOSMemory()
		rssFreed := testenv.RSS(os.Getpid())
		heap := int64(after.HeapInuse) - int64(before.HeapInuse)
		live := liveHeap() - liveBefore
		fmt.Printf("\nverdict cache: %d verdicts (copies of a real one, %d bytes as JSON) filled in %v\n", n, len(template), fill.Round(time.Millisecond))
		fmt.Printf("  live heap of the cache:        %7.1f MiB (%.0f bytes a verdict)\n", float64(live)/(1<<20), float64(live)/float64(n))
		fmt.Printf("  heap in use for the cache:     %7.1f MiB (spans holding it)\n", float64(heap)/(1<<20))
		fmt.Printf("  process RSS before filling:    %7.1f MiB\n", float64(rssBefore)/(1<<20))
		fmt.Printf("  process RSS with the cache:    %7.1f MiB after GC (goal < 200 MiB: %s); %.1f MiB once freed pages are returned\n",
			float64(rss)/(1<<20), timing.Met(rss < 200<<20), float64(rssFreed)/(1<<20))
		b.ReportMetric(float64(rss)/(1<<20), "MiB-RSS")
		runtime.KeepAlive(c)
	}
}
