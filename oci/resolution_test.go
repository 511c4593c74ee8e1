package oci_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/oci"
)

// switchableRegistry is olareg in-process behind a switch that makes it
// answer 503 to everything, counting the requests it gets.
func switchableRegistry(t *testing.T) (host string, down *atomic.Bool, requests *atomic.Int64) {
	t.Helper()
	host, down, requests, _ = slowRegistry(t)
	return host, down, requests
}

// slowRegistry is switchableRegistry whose answers wait delay
// (nanoseconds) first.
func slowRegistry(t *testing.T) (host string, down *atomic.Bool, requests, delay *atomic.Int64) {
	t.Helper()
	yes := true
	s := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreMem},
		API:     config.ConfigAPI{PushEnabled: &yes, DeleteEnabled: &yes, Referrer: config.ConfigAPIReferrer{Enabled: &yes}},
	})
	down, requests, delay = &atomic.Bool{}, &atomic.Int64{}, &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-time.After(time.Duration(delay.Load())):
		case <-r.Context().Done():
			return
		}
		if down.Load() {
			http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"down"}]}`, http.StatusServiceUnavailable)
			return
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); s.Close() })
	return strings.TrimPrefix(srv.URL, "http://"), down, requests, delay
}

// TestRemoteResolutionLeaderGivesUp: with a ResolutionTTL, a caller that
// joined a resolution whose first caller gave up (its context ended)
// resolves for itself instead of failing with the other's deadline.
func TestRemoteResolutionLeaderGivesUp(t *testing.T) {
	host, _, _, delay := slowRegistry(t)
	art := pushArtifact(t, repo(t, host, "app"))
	ref := mustParse(t, host+"/app:v1")
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain, ResolutionTTL: time.Minute})
	delay.Store(int64(300 * time.Millisecond))
	leader, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := src.Resolve(leader, ref); done <- err }()
	time.Sleep(30 * time.Millisecond)
	a, err := src.Resolve(context.Background(), ref)
	if err != nil || a.Descriptor.Digest != art.Digest {
		t.Errorf("the joined caller got %v, %v; want %s", a.Descriptor.Digest, err, art.Digest)
	}
	if err := <-done; err == nil {
		t.Error("the caller whose deadline passed got an answer")
	}
}

// TestRemoteResolutionTTL: with a ResolutionTTL, a moved tag is seen once
// the TTL has passed and not before; without one (keyward verify), the
// first answer holds for the Remote's lifetime.
func TestRemoteResolutionTTL(t *testing.T) {
	ctx := context.Background()
	host, _, requests := switchableRegistry(t)
	r := repo(t, host, "app")
	first := pushArtifact(t, r)
	ref := mustParse(t, host+"/app:v1")

	const ttl = 300 * time.Millisecond
	server := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain, ResolutionTTL: ttl})
	run := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain})
	for _, src := range []*oci.Remote{server, run} {
		if a, err := src.Resolve(ctx, ref); err != nil || a.Descriptor.Digest != first.Digest {
			t.Fatalf("Resolve = %v, %v; want %s", a.Descriptor.Digest, err, first.Digest)
		}
	}
	moved := pushArtifact(t, r) // tags v1 again
	before := requests.Load()
	for _, src := range []*oci.Remote{server, run} {
		if a, err := src.Resolve(ctx, ref); err != nil || a.Descriptor.Digest != first.Digest {
			t.Fatalf("Resolve within the TTL = %v, %v; want the remembered %s", a.Descriptor.Digest, err, first.Digest)
		}
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("%d registry requests within the TTL, want 0", n)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if a, err := server.Resolve(ctx, ref); err != nil || a.Descriptor.Digest != moved.Digest {
		t.Errorf("Resolve after the TTL = %v, %v; want the moved tag's %s", a.Descriptor.Digest, err, moved.Digest)
	}
	if a, err := run.Resolve(ctx, ref); err != nil || a.Descriptor.Digest != first.Digest {
		t.Errorf("Resolve without a TTL = %v, %v; want the first answer %s for the Remote's lifetime", a.Descriptor.Digest, err, first.Digest)
	}
}

// TestRemoteResolutionFailureForgotten: with a ResolutionTTL a failed
// resolution is asked again at once (the registry may be back); without
// one it is remembered, as keyward verify reports one answer per
// reference. Failures are counted as registry errors.
func TestRemoteResolutionFailureForgotten(t *testing.T) {
	ctx := context.Background()
	host, down, _ := switchableRegistry(t)
	art := pushArtifact(t, repo(t, host, "app"))
	ref := mustParse(t, host+"/app:v1")
	opts := oci.RemoteOptions{PlainHTTP: plain, Retries: 1, RetryWait: time.Millisecond}
	run := oci.NewRemote(opts)
	opts.ResolutionTTL = time.Minute
	server := oci.NewRemote(opts)
	down.Store(true)
	for _, src := range []*oci.Remote{server, run} {
		if _, err := src.Resolve(ctx, ref); err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("Resolve of a registry that is down = %v, want a 503 failure", err)
		}
		stats := src.Stats()
		if len(stats) != 1 || stats[0].Errors < 1 {
			t.Errorf("Stats() = %+v, want the 503s counted as errors", stats)
		}
	}
	down.Store(false)
	if a, err := server.Resolve(ctx, ref); err != nil || a.Descriptor.Digest != art.Digest {
		t.Errorf("Resolve once the registry is back = %v, %v; want %s", a.Descriptor.Digest, err, art.Digest)
	}
	if _, err := run.Resolve(ctx, ref); err == nil {
		t.Error("a Remote without a ResolutionTTL forgot its failure")
	}
}

// TestSharedSignatureCache: a signature fetched by one Remote is served to
// another sharing its SignatureCache without a registry request.
func TestSharedSignatureCache(t *testing.T) {
	ctx := context.Background()
	host, _, requests := switchableRegistry(t)
	r := repo(t, host, "app")
	art := pushArtifact(t, r)
	pushSignature(t, r, art, "A", oci.MediaTypeJWS, []byte(`{"jws":"shared"}`))
	cache := oci.NewSignatureCache(1 << 20)
	one := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain, Signatures: cache})
	two := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain, Signatures: cache})
	a, err := one.Resolve(ctx, mustParse(t, host+"/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	var sigs []ocispec.Descriptor
	if err := one.Signatures(ctx, a, func(d ocispec.Descriptor) error { sigs = append(sigs, d); return nil }); err != nil || len(sigs) != 1 {
		t.Fatalf("Signatures = %v, %v", sigs, err)
	}
	sig, err := one.Fetch(ctx, a, sigs[0])
	if err != nil {
		t.Fatal(err)
	}
	sig.Release()
	if n, b := cache.Len(); n != 1 || b != int64(len(`{"jws":"shared"}`)) {
		t.Fatalf("cache.Len() = %d, %d; want 1 signature of its envelope's bytes", n, b)
	}
	before := requests.Load()
	got, err := two.Fetch(ctx, a, sigs[0])
	if err != nil || string(got.Envelope) != `{"jws":"shared"}` {
		t.Fatalf("Fetch through the second Remote = %v, %v", got, err)
	}
	if n := requests.Load() - before; n != 0 {
		t.Errorf("the second Remote made %d registry requests for a cached signature, want 0", n)
	}
}

// TestRemoteRefusalTTL: a token service's refusal of the credentials is
// remembered for RefusalTTL, then asked again (the credentials may have
// been fixed); without it, for the Remote's lifetime.
func TestRemoteRefusalTTL(t *testing.T) {
	issuer := testenv.StartTokenIssuer(t, testenv.TokenIssuerOptions{Users: map[string]string{"u": "pa55"}, KeyID: true})
	reg := testenv.StartDistributionWithTokenAuth(t, issuer, "u", "pa55")
	ref, _ := testenv.PushArtifact(t, reg, "refused/app")
	ctx := context.Background()
	const ttl = 300 * time.Millisecond
	server := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP, Credential: staticCredential("u", "wrong"), RefusalTTL: ttl, ResolutionTTL: time.Minute})
	run := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP, Credential: staticCredential("u", "wrong")})
	for name, src := range map[string]*oci.Remote{"server": server, "run": run} {
		before := issuer.Requests()
		for range 2 {
			if _, err := src.Resolve(ctx, mustParse(t, ref)); err == nil {
				t.Fatalf("%s: resolved with wrong credentials", name)
			}
		}
		if n := issuer.Requests() - before; n != 1 {
			t.Errorf("%s: %d token requests for two refused resolves, want 1", name, n)
		}
	}
	time.Sleep(ttl + 50*time.Millisecond)
	for name, want := range map[string]int64{"server": 1, "run": 0} {
		src := map[string]*oci.Remote{"server": server, "run": run}[name]
		before := issuer.Requests()
		_, _ = src.Resolve(ctx, mustParse(t, ref))
		if n := issuer.Requests() - before; n != want {
			t.Errorf("%s after the refusal TTL: %d token requests, want %d", name, n, want)
		}
	}
}
