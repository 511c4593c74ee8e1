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
	keys := map[string]any{"default": "bench", "keys": []map[string]string{{
		"name":     "bench",
		"keyPath":  testpki.WriteFile(b, d, "bench.key", testpki.KeyPEM(b, leaf.Key), 0o600),
		"certPath": testpki.WriteFile(b, d, "bench.crt", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644),
	}}}
	data, err := json.Marshal(keys)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.MkdirAll(s.n.ConfigDir, 0o700); err != nil {
		b.Fatal(err)
	}
	testpki.WriteFile(b, s.n.ConfigDir, "signingkeys.json", data, 0o600)
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
// verified; it returns the time and the registry's counts.
func (s *setup) verify(b *testing.B, host string, refs []string) (time.Duration, int64, int64) {
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
	return d, st.Registries[0].Requests, st.Registries[0].TokenRequests
}

// BenchmarkVerifyTokenAuth compares keyward verify on the same artifacts
// with and without token authentication.
func BenchmarkVerifyTokenAuth(b *testing.B) {
	s := newSetup(b)
	issuer := testenv.StartTokenIssuer(b, testenv.TokenIssuerOptions{Users: map[string]string{user: password}, Lifetime: *tokenLife})
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
	counts := map[string][2]int64{}
	for i := 0; i < b.N; i++ {
		samples := timing.Alternate(*rounds, []string{"no-auth", "token-auth"}, func(v string) time.Duration {
			d, reqs, tokens := s.verify(b, hosts[v], refs[v])
			counts[v] = [2]int64{reqs, tokens}
			return d
		})
		n := float64(*artifacts)
		fmt.Printf("distribution v3.1.2, keyward verify --concurrency %d, median of %d alternating rounds\n", *concurrency, *rounds)
		fmt.Printf("  %-34s %10s %12s %14s %14s\n", "variant", "total", "per artifact", "requests/art.", "token requests")
		for _, v := range []string{"no-auth", "token-auth"} {
			m := samples[v].Median()
			fmt.Printf("  %-34s %7.0f ms %9.3f ms %14.2f %14d\n", v, ms(m), ms(m)/n, float64(counts[v][0])/n, counts[v][1])
		}
		r := float64(samples["token-auth"].Median()) / float64(samples["no-auth"].Median())
		verdict := "met"
		if r > 1.1 {
			verdict = "missed"
		}
		fmt.Printf("  token-auth / no-auth: %.2fx the time (goal <= 1.1x: %s)\n", r, verdict)
		b.ReportMetric(r, "x-no-auth")
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
