package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// batchArtifacts is the number of artifacts of BenchmarkBatchRegistry, each
// with its own signature by one signer, spread over batchRepositories.
const (
	batchArtifacts    = 200
	batchRepositories = 10
)

// BenchmarkBatchRegistry is keyward's own cost per artifact on the path of
// bench/verify (make bench): Batch.VerifyAll over batchArtifacts artifacts
// in an in-process olareg, with the referrers API and without it (the
// referrers tag schema), a new Verifier and Remote per run, as keyward
// verify runs. The registry shares the process, so a CPU profile
// (-cpuprofile) shows the client's work next to the server's.
func BenchmarkBatchRegistry(b *testing.B) {
	f := newFixture(b)
	leaf := f.inter.Leaf(b, "batch-bench-leaf")
	doc, err := policy.Parse([]byte(`{"version":"1.0","trustPolicies":[{"name":"bench","registryScopes":["*"],
		"signatureVerification":{"level":"strict"},"trustStores":["ca:main"],"trustedIdentities":["*"]}]}`), "p.json", policy.TypeOCI)
	if err != nil {
		b.Fatal(err)
	}
	for _, referrers := range []bool{true, false} {
		name := "referrers-api"
		if !referrers {
			name = "referrers-tag"
		}
		b.Run(name, func(b *testing.B) {
			host := startOlareg(b, referrers)
			ctx := context.Background()
			refs := make([]string, batchArtifacts)
			for i := range refs {
				repo, err := remote.NewRepository(fmt.Sprintf("%s/bench/app%d", host, i%batchRepositories))
				if err != nil {
					b.Fatal(err)
				}
				repo.PlainHTTP = true
				artifact := pushArtifactTo(b, repo, i)
				pushSignature(b, ctx, repo, artifact, mtJWS, f.sign(b, signSpec{leaf: leaf, desc: &artifact}))
				refs[i] = repo.Reference.String() + "@" + artifact.Digest.String()
			}
			b.ReportAllocs()
			cpu0 := processCPU(b)
			b.ResetTimer()
			for b.Loop() {
				batch := &verify.Batch{Policy: doc, Verifier: f.keywardVerifier(b),
					Source: oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})}
				var firstErr *verify.ReferenceError
				failed := batch.VerifyAll(ctx, refs, reference.Parse, 16, func(r *verify.ReferenceResult) {
					if r.Error != nil && firstErr == nil {
						firstErr = r.Error
					}
				})
				if failed != 0 {
					b.Fatalf("%d of %d did not verify: %+v", failed, len(refs), firstErr)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batchArtifacts), "µs/artifact")
			// CPU time is steadier than wall time on a shared machine; it
			// counts the registry's too.
			b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N*batchArtifacts), "cpu-µs/artifact")
		})
	}
}

// startOlareg serves an in-memory olareg, with or without the referrers
// API, and returns its host.
func startOlareg(b *testing.B, referrers bool) string {
	b.Helper()
	yes := true
	s := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreMem},
		API: config.ConfigAPI{
			PushEnabled: &yes,
			Referrer:    config.ConfigAPIReferrer{Enabled: &referrers},
		},
	})
	srv := httptest.NewServer(s)
	b.Cleanup(func() { srv.Close(); s.Close() })
	return strings.TrimPrefix(srv.URL, "http://")
}

// pushArtifactTo pushes a small distinct image manifest.
func pushArtifactTo(b *testing.B, target oras.Target, i int) ocispec.Descriptor {
	b.Helper()
	ctx := context.Background()
	data := []byte(fmt.Sprintf("artifact %d", i))
	layer := content.NewDescriptorFromBytes("text/plain", data)
	if err := target.Push(ctx, layer, bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	desc, err := oras.PackManifest(ctx, target, oras.PackManifestVersion1_1, "application/vnd.keyward.test",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		b.Fatal(err)
	}
	return desc
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
