// Package verifybench is the end-to-end benchmark of keyward's artifact
// verification (scripts/bench/verify.sh, run by make bench): artifacts
// signed by the notation CLI v1.3.2 in a registry process on 127.0.0.1,
// verified in one run four ways, alternately:
//
//   - keyward: the library call keyward verify makes, in this process:
//     verify.Batch.VerifyAll over every reference at once, with the policy,
//     trust store and options keyward verify builds, and a new Verifier and
//     oci.Remote each round (nothing cached between rounds);
//   - the notation CLI: notation verify once per artifact;
//   - notation-go v1.3.2 in process: one verifier, one repository client
//     per repository (referrers capability and connections reused), each
//     artifact in turn through notation.Verify;
//   - the floor: the HTTP requests keyward made (recorded through a proxy
//     in an untimed run of the same library call), replayed by a bare
//     net/http client with keyward's concurrency, bodies read and
//     discarded.
//
// It prints totals, throughput, requests per artifact and the ratios to
// keyward; none is asserted. Registries: distribution v3.1.2 (no referrers
// API: the referrers tag schema) and olareg v0.1.2 (referrers API).
package verifybench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/dir"
	nplugin "github.com/notaryproject/notation-go/plugin"
	nregistry "github.com/notaryproject/notation-go/registry"
	nverifier "github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/internal/replay"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/timing"
	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	kwtruststore "github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

var (
	rounds       = flag.Int("rounds", 3, "alternating rounds of the four variants")
	artifacts    = flag.Int("artifacts", 200, "signed artifacts in each registry")
	repositories = flag.Int("repositories", 10, "repositories the artifacts are spread over")
	concurrency  = flag.Int("concurrency", 16, "keyward's concurrency (keyward verify --concurrency), and the floor client's")
	registries   = flag.String("registries", "distribution,olareg", "registries to measure: distribution (tag schema), olareg (referrers API)")
)

const policyJSON = `{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],
"signatureVerification":{"level":"strict"},"trustStores":["ca:bench"],
"trustedIdentities":["x509.subject: C=US, ST=WA, O=keyward-test"]}]}`

// fixture is a notation configuration that signs and verifies, and the
// signed artifacts of one registry.
type fixture struct {
	n      *testenv.Notation
	policy string // the policy file for keyward
	crl    string // keyward's CRL cache folder
	reg    *testenv.Registry
	refs   []string
}

func newFixture(b *testing.B) *fixture {
	b.Helper()
	f := &fixture{n: testenv.NewNotation(b)}
	root := testpki.Root(b, "bench verify root")
	leaf := root.Leaf(b, "bench verify signer")
	d := b.TempDir()
	f.n.AddLocalKey(b, "bench", leaf, root)
	f.n.AddTrustStore(b, "ca", "bench", root.Cert)
	f.n.SetTrustPolicy(b, []byte(policyJSON))
	f.policy = testpki.WriteFile(b, d, "policy.json", []byte(policyJSON), 0o644)
	f.crl = filepath.Join(d, "crl")
	return f
}

// populate pushes the artifacts and signs each with notation.
func (f *fixture) populate(b *testing.B, reg *testenv.Registry) {
	b.Helper()
	f.reg = reg
	f.refs = make([]string, *artifacts)
	for i := range f.refs {
		f.refs[i], _ = testenv.PushArtifact(b, reg, fmt.Sprintf("bench/app%d", i%*repositories))
	}
	args := []string{"sign", "--insecure-registry"}
	if reg.Referrers {
		args = append(args, "--force-referrers-tag=false")
	}
	// One notation process at a time in a repository: with the referrers
	// tag schema, concurrent signatures of one repository would overwrite
	// each other's referrers index. Four at a time across repositories,
	// except in olareg v0.1.2, which loses referrers when signatures reach
	// different repositories at once (seen here: notation sign succeeded,
	// the referrers API then answered an empty list).
	workers := 4
	if reg.Referrers {
		workers = 1
	}
	errs := make([]error, len(f.refs))
	timing.Parallel(*repositories, workers, func(repo int) {
		for i := repo; i < len(f.refs); i += *repositories {
			if _, stderr, err := f.n.Run(b, append(args, f.refs[i])...); err != nil {
				errs[i] = fmt.Errorf("notation sign %s: %v\n%s", f.refs[i], err, stderr)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// keywardVerify verifies refs (reaching host over plain HTTP) with the
// library call keyward verify makes (cmd/keyward runVerify), with a new
// Verifier and Remote, and fails unless every reference verified.
func (f *fixture) keywardVerify(b *testing.B, host string, refs []string) time.Duration {
	b.Helper()
	start := time.Now()
	doc, err := policy.LoadFile(f.policy, policy.TypeOCI)
	if err != nil {
		b.Fatal(err)
	}
	opts := verify.Options{
		TrustStore:  kwtruststore.New(filepath.Join(f.n.ConfigDir, "truststore")),
		PluginDir:   filepath.Join(f.n.ConfigDir, "plugins"),
		OCSPTimeout: verify.DefaultOCSPTimeout,
		CRLTimeout:  verify.DefaultCRLTimeout,
	}
	if c, err := verify.NewFileCache(f.crl); err == nil {
		opts.CRLCache = c
	}
	verifier, err := verify.NewVerifier(opts)
	if err != nil {
		b.Fatal(err)
	}
	batch := &verify.Batch{
		Policy:   doc,
		Verifier: verifier,
		Source: oci.NewRemote(oci.RemoteOptions{
			PlainHTTP:       func(h string) bool { return h == host },
			UserAgent:       "keyward/" + version.Version,
			MaxConnsPerHost: *concurrency,
		}),
		MaxSignatures: verify.DefaultMaxSignatures,
	}
	results := 0
	var failures []string
	failed := batch.VerifyAll(context.Background(), refs, reference.Parse, *concurrency, func(r *verify.ReferenceResult) {
		results++
		if !r.Verified && len(failures) < 5 {
			msg := "not verified"
			if r.Error != nil {
				msg = r.Error.Message
			}
			failures = append(failures, r.Reference+": "+msg)
		}
	})
	d := time.Since(start)
	if failed > 0 {
		b.Fatalf("keyward: %d of %d references did not verify:\n%s", failed, len(refs), strings.Join(failures, "\n"))
	}
	if results != len(refs) {
		b.Fatalf("keyward gave %d results for %d references", results, len(refs))
	}
	return d
}

// notationLoop runs notation verify once per reference, in turn.
func (f *fixture) notationLoop(b *testing.B, refs []string) time.Duration {
	b.Helper()
	start := time.Now()
	for _, ref := range refs {
		f.n.MustRun(b, "verify", "--insecure-registry", ref)
	}
	return time.Since(start)
}

// notationGo verifies each reference in turn with notation-go in process:
// one verifier, one HTTP client, one repository client per repository.
func (f *fixture) notationGo(b *testing.B, refs []string) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	var doc trustpolicy.Document
	if err := json.Unmarshal([]byte(policyJSON), &doc); err != nil {
		b.Fatal(err)
	}
	v, err := nverifier.NewWithOptions(&doc, truststore.NewX509TrustStore(dir.NewSysFS(f.n.ConfigDir)),
		nplugin.NewCLIManager(dir.NewSysFS(filepath.Join(f.n.ConfigDir, "plugins"))), nverifier.VerifierOptions{})
	if err != nil {
		b.Fatal(err)
	}
	client := &auth.Client{Client: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}, Cache: auth.NewCache()}
	repos := map[string]nregistry.Repository{}
	for _, r := range refs {
		ref, err := registry.ParseReference(r)
		if err != nil {
			b.Fatal(err)
		}
		name := ref.Registry + "/" + ref.Repository
		repo, ok := repos[name]
		if !ok {
			repo = nregistry.NewRepository(&remote.Repository{Client: client, Reference: ref, PlainHTTP: true})
			repos[name] = repo
		}
		if _, _, err := notation.Verify(ctx, v, repo, notation.VerifyOptions{ArtifactReference: r, MaxSignatureAttempts: 100}); err != nil {
			b.Fatalf("notation-go verify %s: %v", r, err)
		}
	}
	return time.Since(start)
}

// via rewrites references to go through the proxy.
func via(refs []string, from, to string) []string {
	out := make([]string, len(refs))
	for i, ref := range refs {
		out[i] = to + strings.TrimPrefix(ref, from)
	}
	return out
}

// BenchmarkVerifyMany measures the four variants on each registry.
func BenchmarkVerifyMany(b *testing.B) {
	for _, name := range strings.Split(*registries, ",") {
		b.Run(name, func(b *testing.B) {
			f := newFixture(b)
			var reg *testenv.Registry
			switch name {
			case "distribution":
				reg = testenv.StartDistribution(b)
			case "olareg":
				reg = testenv.StartOlareg(b)
			default:
				b.Fatalf("unknown registry %q: use distribution or olareg", name)
			}
			setup := time.Now()
			f.populate(b, reg)
			fmt.Printf("\n%s: %d artifacts in %d repositories pushed and signed by notation in %v\n", name, len(f.refs), *repositories, time.Since(setup).Round(time.Millisecond))

			// One untimed pass of each tool through the recording proxy:
			// the requests each makes, and keyward's for the floor.
			rec := replay.NewRecorder(b, reg.Host, nil)
			proxied := via(f.refs, reg.Host, rec.Host())
			f.keywardVerify(b, rec.Host(), proxied)
			keywardReqs := rec.Take()
			f.notationGo(b, proxied)
			goReqs := len(rec.Take())
			f.notationLoop(b, proxied)
			cliReqs := len(rec.Take())

			for i := 0; i < b.N; i++ {
				variants := []string{"keyward", "notation", "notation-go", "floor"}
				s := timing.Alternate(*rounds, variants, func(v string) time.Duration {
					switch v {
					case "keyward":
						return f.keywardVerify(b, reg.Host, f.refs)
					case "notation":
						return f.notationLoop(b, f.refs)
					case "notation-go":
						return f.notationGo(b, f.refs)
					}
					d, err := replay.Replay(reg.Host, keywardReqs, *concurrency)
					if err != nil {
						b.Fatalf("floor: %v", err)
					}
					return d
				})
				report(b, name, reg, len(f.refs), s, map[string]int{"keyward": len(keywardReqs), "notation": cliReqs, "notation-go": goReqs, "floor": len(keywardReqs)})
			}
		})
	}
}

func report(b *testing.B, name string, reg *testenv.Registry, n int, s map[string]timing.Samples, reqs map[string]int) {
	kind := "no referrers API: referrers tag schema"
	if reg.Referrers {
		kind = "OCI 1.1 referrers API"
	}
	fmt.Printf("%s (%s), %d artifacts, median of %d alternating rounds\n", name, kind, n, len(s["keyward"]))
	fmt.Printf("  %-44s %10s %12s %12s %10s\n", "variant", "total", "per artifact", "artifacts/s", "requests")
	rows := []struct{ key, label string }{
		{"keyward", fmt.Sprintf("keyward verify.Batch (in process, %d)", *concurrency)},
		{"notation", "notation verify (1 process per artifact)"},
		{"notation-go", "notation-go v1.3.2 in process (in turn)"},
		{"floor", fmt.Sprintf("floor: keyward's requests, bare client (%d)", *concurrency)},
	}
	for _, r := range rows {
		m := s[r.key].Median()
		fmt.Printf("  %-44s %7.0f ms %9.3f ms %12.0f %10.1f\n", r.label, timing.Millis(m), timing.Millis(m)/float64(n), float64(n)/m.Seconds(), float64(reqs[r.key])/float64(n))
	}
	kw := s["keyward"].Median()
	cli, ngo, fl := timing.Ratio(s["notation"].Median(), kw), timing.Ratio(s["notation-go"].Median(), kw), timing.Ratio(kw, s["floor"].Median())
	fmt.Printf("  keyward vs notation CLI loop:    %6.1fx faster (goal >= 8x: %s)\n", cli, timing.Met(cli >= 8))
	fmt.Printf("  keyward vs notation-go in process: %4.1fx faster (goal >= 2x: %s)\n", ngo, timing.Met(ngo >= 2))
	fmt.Printf("  keyward / floor:                 %6.1fx the time of its bare HTTP requests\n", fl)
	fmt.Printf("  (requests = HTTP requests per artifact)\n")
	b.ReportMetric(cli, "x-notation-cli")
	b.ReportMetric(ngo, "x-notation-go")
	b.ReportMetric(fl, "x-floor")
}
