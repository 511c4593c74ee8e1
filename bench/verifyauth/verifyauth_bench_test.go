// Package verifyauthbench is the benchmark of keyward verify against a
// registry with token authentication (scripts/bench/verify-auth.sh, run by
// make bench): the same artifacts, signed by the notation CLI v1.3.2, in
// distribution v3.1.2 without authentication and in distribution v3.1.2
// with token authentication (auth.token, the test token issuer), verified
// by one keyward verify process each, alternately. It prints the total
// time, registry requests and token requests per artifact of each and the
// ratio of the times; the goal (at most 1.1x) is printed, not asserted.
package verifyauthbench

import (
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/timing"
)

var (
	rounds       = flag.Int("rounds", 5, "alternating rounds of the two variants")
	artifacts    = flag.Int("artifacts", 200, "signed artifacts in each registry")
	repositories = flag.Int("repositories", 10, "repositories the artifacts are spread over")
	concurrency  = flag.Int("concurrency", 16, "keyward verify --concurrency")
	tokenLife    = flag.Duration("token-lifetime", 5*time.Minute, "lifetime of the issuer's tokens")
	x5c          = flag.Bool("x5c", false, "tokens carry the issuer's certificate (x5c), whose chain the registry verifies on every request, instead of naming the key (kid)")
)

const policyJSON = `{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],
"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],
"trustedIdentities":["x509.subject: C=US, ST=WA, O=keyward-test"]}]}`

const user, password = "bench", "bench-pa55word"

// setup is a notation configuration that signs, keyward, and the docker
// config that logs both in to the token-authenticated registry.
type setup struct {
	n       *testenv.Notation
	keyward string
	policy  string
}

func newSetup(b *testing.B) *setup {
	b.Helper()
	s := &setup{n: testenv.NewNotation(b), keyward: testenv.KeywardBinary(b)}
	root := testpki.Root(b, "bench auth root")
	leaf := root.Leaf(b, "bench auth signer")
	d := b.TempDir()
	s.n.AddLocalKey(b, "bench", leaf, root)
	s.n.AddTrustStore(b, "ca", "bench", root.Cert)
	s.n.SetTrustPolicy(b, []byte(policyJSON))
	s.policy = testpki.WriteFile(b, d, "policy.json", []byte(policyJSON), 0o644)
	return s
}

// populate pushes and signs the artifacts in reg; four notation processes
// at a time, one per repository.
func (s *setup) populate(b *testing.B, reg *testenv.Registry) []string {
	b.Helper()
	refs := make([]string, *artifacts)
	for i := range refs {
		refs[i], _ = testenv.PushArtifact(b, reg, fmt.Sprintf("bench/app%d", i%*repositories))
	}
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	work := make(chan int)
	for range min(4, *repositories) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for repo := range work {
				for i := repo; i < len(refs); i += *repositories {
					if _, stderr, err := s.n.Run(b, "sign", "--insecure-registry", refs[i]); err != nil {
						errs[i] = fmt.Errorf("notation sign %s: %v\n%s", refs[i], err, stderr)
					}
				}
			}
		}()
	}
	for r := range *repositories {
		work <- r
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	return refs
}

// stats is the last line of keyward verify -o json -v.
type stats struct {
	Registries []struct {
		Registry      string `json:"registry"`
		Requests      int64  `json:"requests"`
		TokenRequests int64  `json:"tokenRequests"`
	} `json:"registries"`
}

// verify runs keyward verify on refs and fails unless every reference
// verified; it returns the time, the registry's counts and keyward's CPU
// time.
func (s *setup) verify(b *testing.B, host string, refs []string) (time.Duration, int64, int64, time.Duration) {
	b.Helper()
	args := append([]string{"verify", "--policy", s.policy, "--trust-store", filepath.Join(s.n.ConfigDir, "truststore"),
		"--insecure-registry", host, "--concurrency", fmt.Sprint(*concurrency), "-o", "json", "-v"}, refs...)
	cmd := exec.Command(s.keyward, args...)
	cmd.Env = s.n.Env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("keyward verify: %v\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(refs)+1 {
		b.Fatalf("keyward verify printed %d lines for %d references", len(lines), len(refs))
	}
	var st stats
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &st); err != nil || len(st.Registries) != 1 {
		b.Fatalf("summary line %s: %v", lines[len(lines)-1], err)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return d, st.Registries[0].Requests, st.Registries[0].TokenRequests, cpu
}

// BenchmarkVerifyTokenAuth compares keyward verify on the same artifacts
// with and without token authentication.
func BenchmarkVerifyTokenAuth(b *testing.B) {
	s := newSetup(b)
	issuer := testenv.StartTokenIssuer(b, testenv.TokenIssuerOptions{Users: map[string]string{user: password}, Lifetime: *tokenLife, KeyID: !*x5c})
	open := testenv.StartDistribution(b)
	locked := testenv.StartDistributionWithTokenAuth(b, issuer, user, password)
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{locked.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
	if err := os.MkdirAll(filepath.Join(s.n.Home, ".docker"), 0o700); err != nil {
		b.Fatal(err)
	}
	testpki.WriteFile(b, filepath.Join(s.n.Home, ".docker"), "config.json", cfg, 0o600)
	start := time.Now()
	refs := map[string][]string{"no-auth": s.populate(b, open), "token-auth": s.populate(b, locked)}
	hosts := map[string]string{"no-auth": open.Host, "token-auth": locked.Host}
	fmt.Printf("\n%d artifacts in %d repositories, in each registry, pushed and signed by notation in %v\n", *artifacts, *repositories, time.Since(start).Round(time.Millisecond))
	tokens := repoTokens(b, issuer, refs["token-auth"])
	counts := map[string][2]int64{}
	cpu := map[string]timing.Samples{}
	for i := 0; i < b.N; i++ {
		samples := timing.Alternate(*rounds, []string{"no-auth", "token-auth", "floor-no-auth", "floor-token-auth"}, func(v string) time.Duration {
			switch v {
			case "floor-no-auth":
				return floor(b, refs["no-auth"], nil)
			case "floor-token-auth":
				return floor(b, refs["token-auth"], tokens)
			}
			d, reqs, tokens, c := s.verify(b, hosts[v], refs[v])
			counts[v] = [2]int64{reqs, tokens}
			cpu[v] = append(cpu[v], c)
			return d
		})
		n := float64(*artifacts)
		key := "kid"
		if *x5c {
			key = "x5c"
		}
		fmt.Printf("distribution v3.1.2 (tokens with %s), keyward verify --concurrency %d, median of %d alternating rounds\n", key, *concurrency, *rounds)
		fmt.Printf("  %-34s %10s %12s %14s %14s %14s\n", "variant", "total", "per artifact", "requests/art.", "token requests", "keyward CPU")
		for _, v := range []string{"no-auth", "token-auth"} {
			m := samples[v].Median()
			fmt.Printf("  %-34s %7.0f ms %9.3f ms %14.2f %14d %11.0f ms\n", v, ms(m), ms(m)/n, float64(counts[v][0])/n, counts[v][1], ms(cpu[v].Median()))
		}
		for _, v := range []string{"floor-no-auth", "floor-token-auth"} {
			m := samples[v].Median()
			fmt.Printf("  %-34s %7.0f ms %9.3f ms %14d %14s\n", v, ms(m), ms(m)/n, floorRequests, "-")
		}
		r := float64(samples["token-auth"].Median()) / float64(samples["no-auth"].Median())
		fr := float64(samples["floor-token-auth"].Median()) / float64(samples["floor-no-auth"].Median())
		verdict := "met"
		if r > 1.1 {
			verdict = "missed"
		}
		fmt.Printf("  keyward token-auth / no-auth: %.2fx the time (goal <= 1.1x: %s)\n", r, verdict)
		fmt.Printf("  floor   token-auth / no-auth: %.2fx (the registry's own cost of checking a bearer token: %d manifest GETs per artifact, bare client, %d at once)\n", fr, floorRequests, *concurrency)
		b.ReportMetric(r, "x-no-auth")
		b.ReportMetric(fr, "x-floor")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// floorRequests is how many manifest GETs the floor makes per artifact,
// about keyward's requests per artifact.
const floorRequests = 4

// repoTokens fetches a pull token per repository from the issuer.
func repoTokens(b *testing.B, issuer *testenv.TokenIssuer, refs []string) map[string]string {
	b.Helper()
	out := map[string]string{}
	for _, ref := range refs {
		repo := repoOf(ref)
		if _, ok := out[repo]; ok {
			continue
		}
		q := url.Values{"service": {issuer.Service}, "scope": {"repository:" + repo + ":pull"}}
		req, _ := http.NewRequest(http.MethodGet, issuer.Realm+"?"+q.Encode(), nil)
		req.SetBasicAuth(user, password)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var body struct {
			Token string `json:"token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || body.Token == "" {
			b.Fatalf("token for %s: %v", repo, err)
		}
		out[repo] = body.Token
	}
	return out
}

// repoOf is the repository of host/repo@digest.
func repoOf(ref string) string {
	_, rest, _ := strings.Cut(ref, "/")
	repo, _, _ := strings.Cut(rest, "@")
	return repo
}

// floor GETs each artifact's manifest floorRequests times with a bare
// client, concurrency at once, with the repository's bearer token when
// tokens is not nil.
func floor(b *testing.B, refs []string, tokens map[string]string) time.Duration {
	b.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = *concurrency, *concurrency
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	start := time.Now()
	for range *concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range work {
				host, rest, _ := strings.Cut(ref, "/")
				repo, digest, _ := strings.Cut(rest, "@")
				req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+digest, nil)
				req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
				if tokens != nil {
					req.Header.Set("Authorization", "Bearer "+tokens[repo])
				}
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("GET %s: %s", req.URL, resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
		}()
	}
	for _, ref := range refs {
		for range floorRequests {
			work <- ref
		}
	}
	close(work)
	wg.Wait()
	d := time.Since(start)
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	return d
}
