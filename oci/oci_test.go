package oci_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	nregistry "github.com/notaryproject/notation-go/registry"
	"github.com/olareg/olareg"
	"github.com/olareg/olareg/config"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	ocistore "oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
)

// hits counts the requests a test registry answered.
type hits struct {
	all       atomic.Int64
	referrers atomic.Int64 // GET /v2/<name>/referrers/<digest>
}

// startRegistry serves olareg (the same registry the end-to-end tests run
// as a process) in-process, with or without the referrers API.
func startRegistry(t *testing.T, referrers bool) (host string, h *hits) {
	t.Helper()
	yes := true
	s := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreMem},
		API: config.ConfigAPI{
			PushEnabled:   &yes,
			DeleteEnabled: &yes,
			Referrer:      config.ConfigAPIReferrer{Enabled: &referrers},
		},
	})
	h = &hits{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.all.Add(1)
		if strings.Contains(r.URL.Path, "/referrers/") {
			h.referrers.Add(1)
		}
		s.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { srv.Close(); s.Close() })
	return strings.TrimPrefix(srv.URL, "http://"), h
}

func plain(string) bool { return true }

var artifacts atomic.Int64

// pushArtifact pushes a small image manifest tagged v1 and returns it.
func pushArtifact(t *testing.T, target oras.Target) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	layer := pushBlob(t, target, "text/plain", []byte(fmt.Sprintf("artifact %s %d", t.Name(), artifacts.Add(1))))
	desc, err := oras.PackManifest(ctx, target, oras.PackManifestVersion1_1, "application/vnd.keyward.test",
		oras.PackManifestOptions{Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	if err := target.Tag(ctx, desc, "v1"); err != nil {
		t.Fatal(err)
	}
	return desc
}

func pushBlob(t *testing.T, target oras.Target, mediaType string, data []byte) ocispec.Descriptor {
	t.Helper()
	desc := content.NewDescriptorFromBytes(mediaType, data)
	if err := target.Push(context.Background(), desc, bytes.NewReader(data)); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	return desc
}

// pushSignature pushes a signature manifest of the given form ("A": artifactType
// with the empty config; "B": config media type notary signature) for subject.
func pushSignature(t *testing.T, target oras.Target, subject ocispec.Descriptor, form, envType string, envelope []byte) ocispec.Descriptor {
	t.Helper()
	layer := pushBlob(t, target, envType, envelope)
	opts := oras.PackManifestOptions{Subject: &subject, Layers: []ocispec.Descriptor{layer},
		ManifestAnnotations: map[string]string{"io.cncf.notary.x509chain.thumbprint#S256": `["00"]`}}
	artifactType := oci.ArtifactTypeSignature
	if form == "B" {
		cfg := pushBlob(t, target, oci.ArtifactTypeSignature, []byte("{}"))
		opts.ConfigDescriptor = &cfg
		artifactType = ""
	}
	desc, err := oras.PackManifest(context.Background(), target, oras.PackManifestVersion1_1, artifactType, opts)
	if err != nil {
		t.Fatal(err)
	}
	return desc
}

// pushManifest pushes raw manifest JSON.
func pushManifest(t *testing.T, target oras.Target, m any) ocispec.Descriptor {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	desc := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, raw)
	if err := target.Push(context.Background(), desc, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	return desc
}

func repo(t *testing.T, host, name string) *remote.Repository {
	t.Helper()
	r, err := remote.NewRepository(host + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	return r
}

func TestRemote(t *testing.T) {
	for _, referrers := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers API %v", referrers), func(t *testing.T) {
			ctx := context.Background()
			host, hits := startRegistry(t, referrers)
			r := repo(t, host, "app")
			art := pushArtifact(t, r)
			sigA := pushSignature(t, r, art, "A", oci.MediaTypeJWS, []byte(`{"jws":"A"}`))
			sigB := pushSignature(t, r, art, "B", oci.MediaTypeCOSE, []byte("cose B"))
			// A referrer that is not a signature (an SBOM) must not be listed.
			sbom := pushBlob(t, r, "application/spdx+json", []byte("{}"))
			if _, err := oras.PackManifest(ctx, r, oras.PackManifestVersion1_1, "application/spdx+json",
				oras.PackManifestOptions{Subject: &art, Layers: []ocispec.Descriptor{sbom}}); err != nil {
				t.Fatal(err)
			}

			src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain})
			a, err := src.Resolve(ctx, mustParse(t, host+"/app:v1"))
			if err != nil {
				t.Fatal(err)
			}
			if a.Descriptor.Digest != art.Digest || a.Reference.Tag != "v1" || a.Reference.Scope != host+"/app" {
				t.Fatalf("Resolve = %+v, want digest %s tag v1 scope %s/app", a, art.Digest, host)
			}
			var listed []ocispec.Descriptor
			if err := src.Signatures(ctx, a, func(d ocispec.Descriptor) error { listed = append(listed, d); return nil }); err != nil {
				t.Fatal(err)
			}
			got := map[digest.Digest]bool{}
			for _, d := range listed {
				got[d.Digest] = true
			}
			if len(listed) != 2 || !got[sigA.Digest] || !got[sigB.Digest] {
				t.Fatalf("Signatures listed %v, want the form A and form B signatures only", listed)
			}
			for _, want := range []struct {
				d                   ocispec.Descriptor
				mediaType, envelope string
			}{
				{sigA, oci.MediaTypeJWS, `{"jws":"A"}`},
				{sigB, oci.MediaTypeCOSE, "cose B"},
			} {
				d := want.d
				s, err := src.Fetch(ctx, a, d)
				if err != nil {
					t.Fatal(err)
				}
				if s.MediaType != want.mediaType || string(s.Envelope) != want.envelope || s.Annotations["io.cncf.notary.x509chain.thumbprint#S256"] == "" {
					t.Errorf("Fetch(%s) = %s %q %v", d.Digest, s.MediaType, s.Envelope, s.Annotations)
				}
			}

			// Nothing is asked twice: resolving, listing is cached per
			// repository, and fetched signatures are kept.
			before := hits.all.Load()
			if _, err := src.Resolve(ctx, mustParse(t, host+"/app:v1")); err != nil {
				t.Fatal(err)
			}
			if _, err := src.Fetch(ctx, a, sigA); err != nil {
				t.Fatal(err)
			}
			if n := hits.all.Load() - before; n != 0 {
				t.Errorf("repeated resolve and fetch made %d requests, want 0", n)
			}

			// ErrStop ends the listing without error after the first.
			calls := 0
			if err := src.Signatures(ctx, a, func(ocispec.Descriptor) error { calls++; return oci.ErrStop }); err != nil || calls != 1 {
				t.Errorf("Signatures with ErrStop: %v after %d calls", err, calls)
			}
			boom := errors.New("boom")
			if err := src.Signatures(ctx, a, func(ocispec.Descriptor) error { return boom }); !errors.Is(err, boom) {
				t.Errorf("Signatures returned %v, want the callback's error", err)
			}

			// A digest reference must match what the registry serves.
			if _, err := src.Resolve(ctx, mustParse(t, host+"/app@"+art.Digest.String())); err != nil {
				t.Errorf("Resolve by digest: %v", err)
			}
			if a2, err := src.Resolve(ctx, mustParse(t, host+"/app:v1@"+art.Digest.String())); err != nil || a2.Reference.Tag != "v1" {
				t.Errorf("Resolve tag@digest = %+v, %v", a2, err)
			}
		})
	}
}

// TestRemoteProbesReferrersOnce lists the signatures of many artifacts of
// one repository at once: a registry without the referrers API is asked
// for it once, not once per artifact, and every listing still finds its
// signature through the referrers tag schema; with the API, each listing
// is one request to it.
func TestRemoteProbesReferrersOnce(t *testing.T) {
	for _, api := range []bool{false, true} {
		t.Run(fmt.Sprintf("referrers API %v", api), func(t *testing.T) {
			ctx := context.Background()
			host, hits := startRegistry(t, api)
			r := repo(t, host, "many")
			const n = 12
			arts := make([]oci.Artifact, n)
			for i := range arts {
				d := pushArtifact(t, r)
				pushSignature(t, r, d, "A", oci.MediaTypeJWS, fmt.Appendf(nil, `{"jws":%d}`, i))
				arts[i] = oci.Artifact{Reference: mustParse(t, host+"/many@"+d.Digest.String()), Descriptor: d}
			}
			before := hits.referrers.Load()
			src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain})
			var wg sync.WaitGroup
			found := make([]int, n)
			errs := make([]error, n)
			for i := range arts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = src.Signatures(ctx, arts[i], func(ocispec.Descriptor) error { found[i]++; return nil })
				}()
			}
			wg.Wait()
			for i := range arts {
				if errs[i] != nil || found[i] != 1 {
					t.Errorf("artifact %d: %d signatures listed, error %v; want 1", i, found[i], errs[i])
				}
			}
			want := int64(1)
			if api {
				want = n
			}
			if got := hits.referrers.Load() - before; got != want {
				t.Errorf("%d requests to the referrers API for %d artifacts listed at once, want %d", got, n, want)
			}
		})
	}
}

func TestRemoteRejectsMalformedSignatures(t *testing.T) {
	ctx := context.Background()
	host, _ := startRegistry(t, true)
	r := repo(t, host, "bad")
	art := pushArtifact(t, r)
	other := pushArtifact(t, repo(t, host, "bad2"))
	env1 := pushBlob(t, r, oci.MediaTypeJWS, []byte("one"))
	env2 := pushBlob(t, r, oci.MediaTypeJWS, []byte("two"))
	cfg := pushBlob(t, r, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	manifest := func(layers []ocispec.Descriptor, subject ocispec.Descriptor) map[string]any {
		return map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
			"artifactType": oci.ArtifactTypeSignature, "config": cfg, "layers": layers, "subject": subject}
	}
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain})
	a, err := src.Resolve(ctx, mustParse(t, host+"/bad@"+art.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		m    any
		want string
	}{
		{"two envelopes", manifest([]ocispec.Descriptor{env1, env2}, art), "exactly one signature envelope blob, got 2"},
		{"no envelope", manifest(nil, art), "got 0"},
		{"another subject", manifest([]ocispec.Descriptor{env1}, other), "does not name the artifact"},
		{"not an envelope", manifest([]ocispec.Descriptor{cfg}, art), "not application/jose+json or application/cose"},
		{"oversized envelope", manifest([]ocispec.Descriptor{{MediaType: oci.MediaTypeJWS, Digest: env1.Digest, Size: oci.MaxEnvelopeSize + 1}}, art), "more than the"},
		{"wrong size", manifest([]ocispec.Descriptor{{MediaType: oci.MediaTypeJWS, Digest: env1.Digest, Size: 2}}, art), "envelope"},
		{"neither form", map[string]any{"schemaVersion": 2, "mediaType": ocispec.MediaTypeImageManifest,
			"config": cfg, "layers": []ocispec.Descriptor{env1}, "subject": art}, "neither form"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := pushManifest(t, r, tc.m)
			_, err := src.Fetch(ctx, a, d)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Fetch() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// faultyRegistry answers every request with status, counting requests.
func faultyRegistry(t *testing.T, status int, delay time.Duration) (string, *atomic.Int64) {
	t.Helper()
	n := &atomic.Int64{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":"status %d"}]}`, status)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), n
}

func TestRemoteErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		status   int
		want     string
		retried  bool
		deadline bool
	}{
		{status: http.StatusUnauthorized, want: "requires authentication (401) and no credential is configured"},
		{status: http.StatusForbidden, want: "denied access (403)"},
		{status: http.StatusNotFound, want: "not found in registry"},
		{status: http.StatusTooManyRequests, want: "rate limiting (429)", retried: true},
		{status: http.StatusServiceUnavailable, want: "failed (503) and kept failing after retries", retried: true},
		{status: http.StatusOK, want: "did not answer in time", deadline: true},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			delay := time.Duration(0)
			if tc.deadline {
				delay = 5 * time.Second
			}
			host, n := faultyRegistry(t, tc.status, delay)
			ctx := ctx
			if tc.deadline {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain, Retries: 2, RetryWait: time.Millisecond})
			_, err := src.Resolve(ctx, mustParse(t, host+"/app:v1"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Resolve() = %v, want %q", err, tc.want)
			}
			if tc.retried && n.Load() < 2 {
				t.Errorf("%d requests: a %d must be retried", n.Load(), tc.status)
			}
			if !tc.retried && !tc.deadline && n.Load() > 2 {
				t.Errorf("%d requests: a %d must not be retried", n.Load(), tc.status)
			}
		})
	}
	t.Run("credentials refused", func(t *testing.T) {
		host, _ := faultyRegistry(t, http.StatusUnauthorized, 0)
		src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain,
			Credential: auth.StaticCredential(host, auth.Credential{Username: "u", Password: "not-this-one"})})
		_, err := src.Resolve(ctx, mustParse(t, host+"/app:v1"))
		if err == nil || !strings.Contains(err.Error(), "refused the credentials (401)") {
			t.Fatalf("Resolve() = %v", err)
		}
		if strings.Contains(err.Error(), "not-this-one") {
			t.Errorf("the password leaked into the error: %v", err)
		}
	})
	t.Run("refused connection", func(t *testing.T) {
		src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain})
		_, err := src.Resolve(ctx, mustParse(t, "127.0.0.1:1/app:v1"))
		if err == nil || !strings.Contains(err.Error(), "cannot reach registry 127.0.0.1:1") {
			t.Errorf("Resolve() = %v", err)
		}
	})
	t.Run("layout reference", func(t *testing.T) {
		ref, err := reference.ParseLayout("/tmp/layout:v1", "local/app")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := oci.NewRemote(oci.RemoteOptions{}).Resolve(ctx, ref); err == nil || !strings.Contains(err.Error(), "does not name a registry") {
			t.Errorf("Resolve() = %v", err)
		}
	})
}

func TestLayouts(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "with:colon", "layout")
	store, err := ocistore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	art := pushArtifact(t, store)
	sigA := pushSignature(t, store, art, "A", oci.MediaTypeCOSE, []byte("cose A"))
	sigB := pushSignature(t, store, art, "B", oci.MediaTypeJWS, []byte(`{"b":1}`))
	// Another artifact's signature and a non-signature referrer.
	other := pushArtifact(t, store)
	pushSignature(t, store, other, "A", oci.MediaTypeJWS, []byte("other"))
	if _, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "application/spdx+json",
		oras.PackManifestOptions{Subject: &art, Layers: []ocispec.Descriptor{pushBlob(t, store, "application/spdx+json", []byte("[]"))}}); err != nil {
		t.Fatal(err)
	}
	if err := store.SaveIndex(); err != nil {
		t.Fatal(err)
	}

	src := oci.NewLayouts()
	for _, ref := range []string{dir + "@" + art.Digest.String()} {
		a, err := src.Resolve(ctx, mustParseLayout(t, ref))
		if err != nil {
			t.Fatal(err)
		}
		if a.Descriptor.Digest != art.Digest || a.Reference.Scope != "local/app" {
			t.Fatalf("Resolve(%s) = %+v", ref, a)
		}
		var listed []ocispec.Descriptor
		if err := src.Signatures(ctx, a, func(d ocispec.Descriptor) error { listed = append(listed, d); return nil }); err != nil {
			t.Fatal(err)
		}
		// notation-go v1.3.2 finds only form B in a layout (by the config
		// media type), and so does keyward: the same list as notation's.
		if len(listed) != 1 || listed[0].Digest != sigB.Digest {
			t.Fatalf("Signatures listed %v, want form B (%s) only", listed, sigB.Digest)
		}
		nrepo, err := nregistry.NewOCIRepository(dir, nregistry.RepositoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var nlisted []ocispec.Descriptor
		if err := nrepo.ListSignatures(ctx, a.Descriptor, func(ds []ocispec.Descriptor) error { nlisted = append(nlisted, ds...); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(nlisted) != len(listed) || nlisted[0].Digest != listed[0].Digest {
			t.Fatalf("notation-go lists %v, keyward %v", nlisted, listed)
		}
		for _, d := range []ocispec.Descriptor{sigA, sigB} {
			s, err := src.Fetch(ctx, a, d)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Envelope) == 0 {
				t.Error("empty envelope")
			}
		}
	}
	if a, err := src.Resolve(ctx, mustParseLayout(t, dir+":v1")); err != nil || a.Descriptor.Digest != other.Digest || a.Reference.Tag != "v1" {
		t.Errorf("Resolve by tag = %+v, %v; want the artifact tagged last", a, err)
	}
	if _, err := src.Resolve(ctx, mustParseLayout(t, dir+":nope")); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown tag: %v", err)
	}
	if _, err := src.Resolve(ctx, mustParse(t, "example.com/app:v1")); err == nil || !strings.Contains(err.Error(), "does not name an OCI layout") {
		t.Errorf("registry reference: %v", err)
	}
}

// TestRemoteTLS reaches a registry over TLS with a certificate of a CA
// given in RootCAs, and refuses it without.
func TestRemoteTLS(t *testing.T) {
	yes := true
	s := olareg.New(config.Config{
		Storage: config.ConfigStorage{StoreType: config.StoreMem},
		API:     config.ConfigAPI{PushEnabled: &yes, Referrer: config.ConfigAPIReferrer{Enabled: &yes}},
	})
	srv := httptest.NewTLSServer(s)
	t.Cleanup(func() { srv.Close(); s.Close() })
	host := strings.TrimPrefix(srv.URL, "https://")
	r, err := remote.NewRepository(host + "/secure")
	if err != nil {
		t.Fatal(err)
	}
	r.Client = srv.Client()
	art := pushArtifact(t, r)

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	ctx := context.Background()
	a, err := oci.NewRemote(oci.RemoteOptions{RootCAs: pool}).Resolve(ctx, mustParse(t, host+"/secure:v1"))
	if err != nil || a.Descriptor.Digest != art.Digest {
		t.Fatalf("Resolve over TLS with the CA: %+v, %v", a, err)
	}
	_, err = oci.NewRemote(oci.RemoteOptions{Retries: 1, RetryWait: time.Millisecond}).Resolve(ctx, mustParse(t, host+"/secure:v1"))
	if err == nil || !strings.Contains(err.Error(), "presented a TLS certificate issued by a CA this machine does not trust: pass --ca-file") {
		t.Fatalf("Resolve over TLS without the CA: %v, want a certificate error that names --ca-file", err)
	}
}

func mustParse(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustParseLayout(t *testing.T, s string) reference.Reference {
	t.Helper()
	r, err := reference.ParseLayout(s, "local/app")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRemoteRequestBudget stops a reference whose requests exceed the
// budget its context carries.
func TestRemoteRequestBudget(t *testing.T) {
	ctx := context.Background()
	host, _ := startRegistry(t, true)
	r := repo(t, host, "app")
	art := pushArtifact(t, r)
	pushSignature(t, r, art, "A", oci.MediaTypeJWS, []byte(`{"jws":"A"}`))
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plain})
	// Resolution costs one request: a budget of one lets it through and
	// stops the listing that follows.
	bctx := oci.WithRequestBudget(ctx, 1)
	a, err := src.Resolve(bctx, mustParse(t, host+"/app:v1"))
	if err != nil {
		t.Fatal(err)
	}
	err = src.Signatures(bctx, a, func(ocispec.Descriptor) error { return nil })
	if !errors.Is(err, oci.ErrRequestBudget) {
		t.Fatalf("Signatures over budget = %v, want ErrRequestBudget", err)
	}
	// A fresh budget lists them.
	n := 0
	if err := src.Signatures(oci.WithRequestBudget(ctx, 10), a, func(ocispec.Descriptor) error { n++; return nil }); err != nil || n != 1 {
		t.Fatalf("Signatures = %d, %v", n, err)
	}
}
