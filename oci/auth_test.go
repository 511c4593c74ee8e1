package oci_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
)

func plainHTTP(string) bool { return true }

func staticCredential(user, pass string) auth.CredentialFunc {
	return func(context.Context, string) (auth.Credential, error) {
		return auth.Credential{Username: user, Password: pass}, nil
	}
}

// TestRemoteTokenRenewal resolves through distribution v3.1.2 with token
// authentication: a token is reused within its scope, renewed once when it
// expired, and a token service whose tokens are refused at once is not
// asked in a loop.
func TestRemoteTokenRenewal(t *testing.T) {
	// Tokens name their key by "kid" here; the cmd/keyward tests use x5c.
	issuer := testenv.StartTokenIssuer(t, testenv.TokenIssuerOptions{Users: map[string]string{"u": "pa55"}, Lifetime: 3 * time.Second, KeyID: true})
	reg := testenv.StartDistributionWithTokenAuth(t, issuer, "u", "pa55")
	var refs []string
	for range 3 {
		ref, _ := testenv.PushArtifact(t, reg, "renew/app")
		refs = append(refs, ref)
	}
	ctx := context.Background()
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP, Credential: staticCredential("u", "pa55")})
	before := issuer.Requests()
	for _, r := range refs[:2] {
		if _, err := src.Resolve(ctx, mustParse(t, r)); err != nil {
			t.Fatal(err)
		}
	}
	if n := issuer.Requests() - before; n != 1 {
		t.Fatalf("%d token requests for two artifacts of one repository, want 1", n)
	}
	time.Sleep(3500 * time.Millisecond) // the token expires
	if _, err := src.Resolve(ctx, mustParse(t, refs[2])); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	if n := issuer.Requests() - before; n != 2 {
		t.Errorf("%d token requests, want 2: one renewal after the expiry", n)
	}
	if st := src.Stats(); len(st) != 1 || st[0].TokenRequests != 2 || st[0].Registry != reg.Host {
		t.Errorf("stats %+v, want 2 token requests to %s", st, reg.Host)
	}

	// Tokens the registry refuses at once (expired when issued): one
	// renewal per request, never a loop.
	issuer.SetLifetime(time.Nanosecond)
	src = oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP, Credential: staticCredential("u", "pa55"), Retries: 1, RetryWait: time.Millisecond})
	before = issuer.Requests()
	_, err := src.Resolve(ctx, mustParse(t, refs[0]))
	if err == nil || !strings.Contains(err.Error(), "(401)") {
		t.Fatalf("err %v, want a 401", err)
	}
	if n := issuer.Requests() - before; n < 1 || n > 2 {
		t.Errorf("%d token requests for one refused resolve, want 1 or 2", n)
	}
}

// fakeBearer is a registry whose every request needs a bearer token from
// its token service, in one process.
type fakeBearer struct {
	srv           *httptest.Server
	tokenRequests atomic.Int64
	scopes        []string
	mu            sync.Mutex
	issued        int
	valid         map[string]bool
	refuseAll     bool          // the registry refuses every token
	actions       string        // actions of the challenge's scope (default pull)
	slow401       atomic.Int64  // armed 401s left
	armed         int64         // how many 401s were armed
	delay         time.Duration // delay of the armed 401s but the first
}

func newFakeBearer(t *testing.T) *fakeBearer {
	f := &fakeBearer{valid: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			f.tokenRequests.Add(1)
			f.mu.Lock()
			f.scopes = append(f.scopes, r.URL.Query()["scope"]...)
			f.issued++
			tok := fmt.Sprintf("tok%d", f.issued)
			f.valid[tok] = true
			f.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
			return
		}
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		f.mu.Lock()
		ok := f.valid[tok] && !f.refuseAll
		f.mu.Unlock()
		if !ok {
			// Of the armed 401s, the first is answered at once, the
			// others after the delay.
			if n := f.slow401.Add(-1); n >= 0 && n < f.armed-1 {
				time.Sleep(f.delay)
			}
			repo := strings.Split(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/")[0]
			actions := f.actions
			if actions == "" {
				actions = "pull"
			}
			w.Header().Set("Www-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="fake",scope="repository:%s:%s"`, f.srv.URL, repo, actions))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
		w.Header().Set("Content-Length", "2")
		if r.Method == http.MethodGet {
			w.Write([]byte("{}"))
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeBearer) ref(t *testing.T, repo, tag string) reference.Reference {
	return mustParse(t, strings.TrimPrefix(f.srv.URL, "http://")+"/"+repo+":"+tag)
}

// TestRemoteTokenOncePerScope checks that requests that were refused before
// the first token of their scope arrived use that token instead of asking
// for another (oras-go's own cache asks again once its fetch is over), and
// that the token service is asked for pull only.
func TestRemoteTokenOncePerScope(t *testing.T) {
	for _, actions := range []string{"pull", "pull,push"} {
		t.Run(actions, func(t *testing.T) { testTokenOncePerScope(t, actions) })
	}
}

func testTokenOncePerScope(t *testing.T, actions string) {
	f := newFakeBearer(t)
	f.actions = actions
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP})
	ctx := context.Background()
	// Learn that the registry wants bearer tokens, with another repository.
	if _, err := src.Resolve(ctx, f.ref(t, "warm/up", "v1")); err != nil {
		t.Fatal(err)
	}
	// Eight concurrent requests to a new repository; all but the first
	// get their 401 after the first one has its token.
	f.armed, f.delay = 8, 200*time.Millisecond
	f.slow401.Store(8)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := src.Resolve(ctx, f.ref(t, "app/one", fmt.Sprintf("v%d", i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.tokenRequests.Load(); n != 2 {
		t.Errorf("%d token requests for two repositories, want 2", n)
	}
	for _, s := range f.scopes {
		if strings.Contains(s, "push") {
			t.Errorf("token requested with scope %q: keyward asks for pull only", s)
		}
	}
	if st := src.Stats(); len(st) != 1 || st[0].TokenRequests != 2 {
		t.Errorf("stats %+v, want 2 token requests", st)
	}
	// With its token known, a resolve in the repository is one request,
	// not a 401 and a second try.
	before := src.Stats()[0].Requests
	if _, err := src.Resolve(ctx, f.ref(t, "app/one", "again")); err != nil {
		t.Fatal(err)
	}
	if n := src.Stats()[0].Requests - before; n != 1 {
		t.Errorf("%d requests to resolve with a cached token, want 1", n)
	}
}

// TestRemoteTokenNoLoop checks that a registry that refuses every token
// gets one renewal per request, not a loop.
func TestRemoteTokenNoLoop(t *testing.T) {
	f := newFakeBearer(t)
	f.refuseAll = true
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP})
	_, err := src.Resolve(context.Background(), f.ref(t, "app/x", "v1"))
	if err == nil || !strings.Contains(err.Error(), "(401)") {
		t.Fatalf("err %v, want a 401", err)
	}
	if n := f.tokenRequests.Load(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}
	_, err = src.Resolve(context.Background(), f.ref(t, "app/x", "v2"))
	if err == nil {
		t.Fatal("no error")
	}
	if n := f.tokenRequests.Load(); n != 2 {
		t.Errorf("%d token requests after a second refused resolve, want 2", n)
	}
}

// TestRemoteRealmOfAnotherRegistry checks that a registry cannot, by naming
// another registry's URL as the realm of its challenge, make keyward take
// that registry's answers for token-service answers: its expired tokens are
// still renewed, and requests and token requests are counted to the
// registry that made them.
func TestRemoteRealmOfAnotherRegistry(t *testing.T) {
	f := newFakeBearer(t)
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP})
	ctx := context.Background()
	if _, err := src.Resolve(ctx, f.ref(t, "app/x", "v1")); err != nil {
		t.Fatal(err)
	}
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Www-Authenticate", fmt.Sprintf(`Bearer realm="%s/v2/app/x/manifests/v2",service="fake",scope="repository:app/x:pull"`, f.srv.URL))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer hostile.Close()
	hostileRef := mustParse(t, strings.TrimPrefix(hostile.URL, "http://")+"/app/x:v1")
	if _, err := src.Resolve(ctx, hostileRef); err == nil {
		t.Fatal("the hostile registry's artifact resolved")
	}
	// The registry's token expires; the next resolve renews it.
	f.mu.Lock()
	clear(f.valid)
	f.mu.Unlock()
	if _, err := src.Resolve(ctx, f.ref(t, "app/x", "v2")); err != nil {
		t.Fatalf("after the token expired: %v", err)
	}
	for _, s := range src.Stats() {
		if s.Registry == f.ref(t, "a", "b").Registry && s.TokenRequests != 2 {
			t.Errorf("stats %+v: want 2 token requests to the registry", s)
		}
	}
}

// TestRemoteTokenRedirectPullOnly checks that a token service that
// redirects is still asked for pull only, and counted as a token request.
func TestRemoteTokenRedirectPullOnly(t *testing.T) {
	var scopes []string
	var mu sync.Mutex
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			http.Redirect(w, r, "/token2?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
			return
		case "/token2":
			mu.Lock()
			scopes = append(scopes, r.URL.Query()["scope"]...)
			mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"token": "t", "expires_in": 300})
			return
		}
		if r.Header.Get("Authorization") != "Bearer t" {
			w.Header().Set("Www-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="s",scope="repository:app/x:pull,push"`, srv.URL))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
		w.Header().Set("Content-Length", "2")
	}))
	defer srv.Close()
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP})
	if _, err := src.Resolve(context.Background(), mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/app/x:v1")); err != nil {
		t.Fatal(err)
	}
	if len(scopes) == 0 {
		t.Fatal("no token request reached the redirect target")
	}
	for _, s := range scopes {
		if strings.Contains(s, "push") {
			t.Errorf("redirected token request asked for %q: keyward asks for pull only", s)
		}
	}
	if st := src.Stats(); len(st) != 1 || st[0].TokenRequests != 2 || st[0].Requests != 2 {
		t.Errorf("stats %+v, want 2 requests to the registry and 2 token requests (the redirect and its target)", st)
	}
}

// TestRemoteStatsRedirect checks that a request the registry redirects
// (blobs served from storage elsewhere, a moved repository) is counted to
// the host it went to, not to a registry without a name.
func TestRemoteStatsRedirect(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/app/x/manifests/v1" {
			http.Redirect(w, r, "/v2/app/x/manifests/moved", http.StatusTemporaryRedirect)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
		w.Header().Set("Content-Length", "2")
	}))
	defer srv.Close()
	src := oci.NewRemote(oci.RemoteOptions{PlainHTTP: plainHTTP})
	ref := mustParse(t, strings.TrimPrefix(srv.URL, "http://")+"/app/x:v1")
	if _, err := src.Resolve(context.Background(), ref); err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); len(st) != 1 || st[0].Registry != ref.Registry || st[0].Requests != 2 {
		t.Errorf("stats %+v, want 2 requests to %s", st, ref.Registry)
	}
}
