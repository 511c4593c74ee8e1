package verify_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// TestBatchListsWhileResolving checks that a reference naming a digest has
// its signatures listed while the digest is checked (the referrers request
// reaches the registry while the manifest request is held), and that the
// listing does not decide when the check fails: a digest the registry says
// it does not have is a resolve error, though its listing holds a valid
// signature.
func TestBatchListsWhileResolving(t *testing.T) {
	f := newFixture(t)
	reg := testenv.StartOlareg(t)
	ref, artifact := testenv.PushArtifact(t, reg, "team/app")
	repo, err := remote.NewRepository(reg.Host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	pushSignature(t, context.Background(), repo, artifact, mtJWS, f.sign(t, signSpec{leaf: f.inter.Leaf(t, "early-leaf"), desc: &artifact}))

	// A front that holds the request for the artifact's manifest until the
	// referrers request has arrived (at most 5 s), or answers it 404.
	target, _ := url.Parse("http://" + reg.Host)
	proxy := httputil.NewSingleHostReverseProxy(target)
	manifestPath := "/v2/team/app/manifests/" + artifact.Digest.String()
	var mu sync.Mutex
	listed := make(chan struct{})
	var heldAndListed, missing bool
	var once sync.Once
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v2/team/app/referrers/"):
			once.Do(func() { close(listed) })
		case r.URL.Path == manifestPath:
			mu.Lock()
			gone := missing
			mu.Unlock()
			if gone {
				http.Error(w, `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}`, http.StatusNotFound)
				return
			}
			select {
			case <-listed:
				mu.Lock()
				heldAndListed = true
				mu.Unlock()
			case <-time.After(5 * time.Second):
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(front.URL, "http://")
	doc, err := policy.Parse([]byte(`{"version":"1.0","trustPolicies":[
		{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:main"],"trustedIdentities":["*"]}]}`), "p.json", policy.TypeOCI)
	if err != nil {
		t.Fatal(err)
	}
	batch := func() *verify.Batch {
		return &verify.Batch{Policy: doc, Verifier: f.keywardVerifier(t),
			Source: oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})}
	}
	parsed, err := reference.Parse(host + strings.TrimPrefix(ref, reg.Host))
	if err != nil {
		t.Fatal(err)
	}
	res := batch().Verify(context.Background(), parsed)
	if !res.Verified || res.Error != nil {
		t.Fatalf("not verified: %+v", res.Error)
	}
	mu.Lock()
	if !heldAndListed {
		t.Error("the referrers request did not arrive while the manifest request was held")
	}
	missing = true
	mu.Unlock()
	res = batch().Verify(context.Background(), parsed)
	if res.Verified || res.Error == nil || res.Error.Kind != verify.ErrorResolve {
		t.Fatalf("a digest the registry does not have: verified %v, error %+v; want a %s error", res.Verified, res.Error, verify.ErrorResolve)
	}
}
