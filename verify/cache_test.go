package verify_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// countingStore counts the reads of each trust store.
type countingStore struct {
	inner verify.TrustStore
	mu    sync.Mutex
	reads map[truststore.Ref]int
}

func (c *countingStore) Certificates(ref truststore.Ref) ([]*x509.Certificate, error) {
	c.mu.Lock()
	c.reads[ref]++
	c.mu.Unlock()
	return c.inner.Certificates(ref)
}

// TestCachesAcrossSignatures verifies many signatures concurrently with one
// Verifier and checks that what repeats is done once: each trust store is
// read once, each chain's revocation is checked once (one OCSP request, one
// CRL download for leaves sharing a CRL), each timestamp token is verified
// once, the plugin's metadata is asked once.
func TestCachesAcrossSignatures(t *testing.T) {
	f := newFixture(t)
	ocspResponder := testpki.StartOCSP(t, f.inter)
	crlServer := testpki.StartCRL(t, f.inter)
	ocspLeaf := f.inter.Leaf(t, "cache-ocsp-leaf", testpki.WithOCSP(ocspResponder.URL()))
	crlLeaves := []*testpki.Cert{
		f.inter.Leaf(t, "cache-crl-leaf-1", testpki.WithCRL(crlServer.URL())),
		f.inter.Leaf(t, "cache-crl-leaf-2", testpki.WithCRL(crlServer.URL())),
	}
	day := 24 * time.Hour
	expired := f.inter.Leaf(t, "cache-expired-leaf", testpki.WithValidity(f.now.Add(-10*day), f.now.Add(-day)))
	timestamped := f.sign(t, signSpec{leaf: expired, signingTime: f.now.Add(-5 * day), tsa: f.tsa, tsaTime: f.now.Add(-5 * day)})

	var envs [][]byte
	for i := 0; i < 4; i++ { // different envelopes, same chain
		envs = append(envs, f.sign(t, signSpec{leaf: ocspLeaf, signingTime: f.now.Add(-time.Duration(i) * time.Minute)}))
	}
	for _, l := range crlLeaves {
		envs = append(envs, f.sign(t, signSpec{leaf: l}))
	}
	envs = append(envs, f.sign(t, signSpec{leaf: ocspLeaf, ext: []signature.Attribute{attr(verify.HeaderVerificationPlugin, pluginName), attr("com.example.extra", "v")}}))

	store := &countingStore{inner: truststore.New(filepath.Join(f.configDir, "truststore")), reads: map[truststore.Ref]int{}}
	v, err := verify.NewVerifier(verify.Options{TrustStore: store, PluginDir: f.pluginDir})
	if err != nil {
		t.Fatal(err)
	}
	st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main", "tsa:tsa"}, []string{"*"}, "afterCertExpiry"))
	req := verify.Request{Statement: st, Artifact: f.artifact, Reference: f.reference()}
	ctx := context.Background()

	var wg sync.WaitGroup
	var failures atomic.Int32
	for round := 0; round < 3; round++ {
		for _, env := range append(envs, timestamped) {
			wg.Add(1)
			go func(env []byte) {
				defer wg.Done()
				res := v.Verify(ctx, req, verify.Envelope{MediaType: mtJWS, Bytes: env})
				if !res.Passed {
					failures.Add(1)
					t.Errorf("signature failed: %v", res.Err)
				}
			}(env)
		}
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}

	for ref, n := range store.reads {
		if n != 1 {
			t.Errorf("trust store %s read %d times, want once", ref, n)
		}
	}
	if get, post := ocspResponder.Requests(); get+post != 1 {
		t.Errorf("OCSP requests: %d GET + %d POST, want one for the one chain", get, post)
	}
	if base, _ := crlServer.Requests(); base != 1 {
		t.Errorf("CRL downloads: %d, want one for two leaves of one CA", base)
	}
	sizes := verify.CacheSizes(v)
	// Revocation: the OCSP chain, the two CRL chains, the TSA chain, and
	// the expired leaf's chain.
	want := map[string]int{"envelopes": len(envs) + 1, "stores": 2, "revocations": 5, "tokens": 1, "metadata": 1}
	for k, n := range want {
		if sizes[k] != n {
			t.Errorf("cache %s has %d entries, want %d", k, sizes[k], n)
		}
	}

	// A new Verifier starts afresh: revocation is checked again.
	v2 := f.keywardVerifier(t)
	if res := v2.Verify(ctx, req, verify.Envelope{MediaType: mtJWS, Bytes: envs[0]}); !res.Passed {
		t.Fatal(res.Err)
	}
	if get, post := ocspResponder.Requests(); get+post != 2 {
		t.Errorf("OCSP requests after a second Verifier: %d, want 2", get+post)
	}
}

// TestCRLFileCacheAcrossVerifiers checks that a CRL downloaded by one
// Verifier is reused by the next one through the file cache, and fetched
// again once its NextUpdate passes.
func TestCRLFileCacheAcrossVerifiers(t *testing.T) {
	f := newFixture(t)
	crlServer := testpki.StartCRL(t, f.inter, testpki.CRLNextUpdate(2*time.Second))
	leaf := f.inter.Leaf(t, "filecache-leaf", testpki.WithCRL(crlServer.URL()))
	env := f.sign(t, signSpec{leaf: leaf})
	cache, err := verify.NewFileCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main"}, []string{"*"}, ""))
	run := func() {
		t.Helper()
		v, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(filepath.Join(f.configDir, "truststore")), CRLCache: cache})
		if err != nil {
			t.Fatal(err)
		}
		res := v.Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact}, verify.Envelope{MediaType: mtJWS, Bytes: env})
		if !res.Passed {
			t.Fatal(res.Err)
		}
	}
	run()
	run()
	if base, _ := crlServer.Requests(); base != 1 {
		t.Fatalf("CRL downloads after two runs: %d, want 1 (the second from the file cache)", base)
	}
	time.Sleep(2500 * time.Millisecond) // past NextUpdate
	run()
	if base, _ := crlServer.Requests(); base != 2 {
		t.Fatalf("CRL downloads after NextUpdate: %d, want 2", base)
	}
}

// TestCRLFetchedOncePerRun verifies, one after the other, signatures by two
// leaves of one CA that share a CRL: one download serves both.
func TestCRLFetchedOncePerRun(t *testing.T) {
	f := newFixture(t)
	crlServer := testpki.StartCRL(t, f.inter)
	v := f.keywardVerifier(t)
	st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main"}, []string{"*"}, ""))
	for i := 0; i < 3; i++ {
		leaf := f.inter.Leaf(t, fmt.Sprintf("sequential-crl-leaf-%d", i), testpki.WithCRL(crlServer.URL()))
		res := v.Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact}, verify.Envelope{MediaType: mtJWS, Bytes: f.sign(t, signSpec{leaf: leaf})})
		if !res.Passed {
			t.Fatal(res.Err)
		}
	}
	if base, _ := crlServer.Requests(); base != 1 {
		t.Fatalf("CRL downloads for three leaves verified in turn: %d, want 1", base)
	}
}
