package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"github.com/keyward/keyward/internal/bounded"
)

// RegistryStats counts what a run asked of one registry.
type RegistryStats struct {
	// Registry is the registry host (host[:port]).
	Registry string `json:"registry"`
	// Requests counts the requests to the registry itself, the answers
	// 401 included; a request retried after an error counts once.
	Requests int64 `json:"requests"`
	// TokenRequests counts the requests to the registry's token service
	// (the realm of its Bearer challenges).
	TokenRequests int64 `json:"tokenRequests"`
	// Errors counts the requests to the registry or its token service
	// that failed: no answer (connection refused, timeout), or an answer
	// 429 or 5xx. It is not part of keyward verify's stats line.
	Errors int64 `json:"-"`
}

// Stats returns the requests made so far to each registry, by host.
func (r *Remote) Stats() []RegistryStats {
	return r.tracker.stats()
}

// authTracker sits between oras-go's auth.Client and the HTTP transport. It
// sees every request: it counts the requests to registries and to their
// token services, narrows the scopes asked of a token service to pull, and
// remembers the tokens a registry refused, so that tokenCache fetches a
// new token only for those (an expired token), not for every request that
// crossed the first token on its way. A token request is known by its
// context, which tokenCache marks with the registry it fetches for: not by
// its URL, which a registry's challenge chooses and may set to another
// registry's (its answers would then escape the 401 handling, and counts
// would go to the wrong registry).
type authTracker struct {
	next http.RoundTripper

	mu        sync.Mutex
	rejected  map[string]bool // bearer tokens a registry answered 401 to
	counts    map[string]*hostCounts
	anonymous map[string]bool // hosts for which no credential is configured
}

type hostCounts struct {
	requests, tokens, errors atomic.Int64
}

// failed reports a request that got no answer, or an answer of a registry
// in trouble (429, 5xx).
func failed(resp *http.Response, err error) bool {
	return err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

func newAuthTracker(next http.RoundTripper) *authTracker {
	return &authTracker{next: next, rejected: map[string]bool{}, counts: map[string]*hostCounts{},
		anonymous: map[string]bool{}}
}

// observeCredential wraps a CredentialFunc to remember the hosts it has no
// credential for, so that a 401 from them says that none is configured.
func (t *authTracker) observeCredential(f auth.CredentialFunc) auth.CredentialFunc {
	return func(ctx context.Context, host string) (auth.Credential, error) {
		cred := auth.EmptyCredential
		var err error
		if f != nil {
			cred, err = f(ctx, host)
		}
		if err == nil {
			t.mu.Lock()
			t.anonymous[host] = cred == auth.EmptyCredential
			t.mu.Unlock()
		}
		return cred, err
	}
}

// describe is describe, saying so when a registry that refused anonymous
// access (an anonymous token without the pull it needs) has no credential
// configured.
func (r *Remote) describe(host, action string, err error) error {
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized {
		r.tracker.mu.Lock()
		anonymous := r.tracker.anonymous[host]
		r.tracker.mu.Unlock()
		if anonymous {
			return fmt.Errorf("%s: registry %s requires authentication (401) and no credential is configured for it: log in with `docker login %s` or `notation login %s`, or pass --username and --password-stdin: %w", action, host, host, host, err)
		}
	}
	return describe(host, action, err)
}

func (t *authTracker) count(host string) *hostCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.counts[host]
	if !ok {
		c = &hostCounts{}
		t.counts[host] = c
	}
	return c
}

func (t *authTracker) stats() []RegistryStats {
	t.mu.Lock()
	out := make([]RegistryStats, 0, len(t.counts))
	for host, c := range t.counts {
		out = append(out, RegistryStats{Registry: host, Requests: c.requests.Load(), TokenRequests: c.tokens.Load(), Errors: c.errors.Load()})
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Registry < out[j].Registry })
	return out
}

func (t *authTracker) isRejected(token string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rejected[token]
}

// tokenRequestKey marks the context of a token request with the registry
// the token is for.
type tokenRequestKey struct{}

func (t *authTracker) RoundTrip(req *http.Request) (*http.Response, error) {
	if registry, isToken := req.Context().Value(tokenRequestKey{}).(string); isToken {
		c := t.count(registry)
		c.tokens.Add(1)
		req, err := pullOnly(req)
		if err != nil {
			return nil, err
		}
		resp, err := t.next.RoundTrip(req)
		if failed(resp, err) {
			c.errors.Add(1)
		}
		return resp, err
	}
	// A redirected request has no Host of its own (net/http sets it on
	// the first request only): it is counted to the host it goes to.
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	c := t.count(host)
	c.requests.Add(1)
	resp, err := t.next.RoundTrip(req)
	if failed(resp, err) {
		c.errors.Add(1)
	}
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	authz := req.Header.Get("Authorization")
	sent, hadToken := strings.CutPrefix(authz, "Bearer ")
	if !hadToken {
		// A refused basic credential (a rotated password): the next Set
		// asks the credential function again instead of resending it.
		sent, hadToken = strings.CutPrefix(authz, "Basic ")
	}
	if hadToken {
		// An expired or insufficient token: the next Set of its scope
		// fetches another (distribution token specification, "Requesting
		// a Token": a client asks for a new token when it gets 401).
		t.mu.Lock()
		if len(t.rejected) >= maxTokens {
			clear(t.rejected) // bounded: at worst a refused token is tried once more
		}
		t.rejected[sent] = true
		t.mu.Unlock()
	}
	return resp, nil
}

// maxTokenForm bounds the OAuth2 form read back to narrow its scopes.
const maxTokenForm = 1 << 20

// pullOnly narrows the scopes of a token request to pull: keyward reads
// and never asks for more (distribution docs/spec/auth/scope.md, resource
// scope "repository:<name>:<actions>"). A GET carries the scopes in the
// query (docs/spec/auth/token.md); the OAuth2 POST in its form
// (docs/spec/auth/oauth.md).
func pullOnly(req *http.Request) (*http.Request, error) {
	switch req.Method {
	case http.MethodGet:
		q := req.URL.Query()
		if !narrow(q, "scope") {
			return req, nil
		}
		req = req.Clone(req.Context())
		req.URL.RawQuery = q.Encode()
		return req, nil
	case http.MethodPost:
		if req.Body == nil || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			return req, nil
		}
		data, err := bounded.ReadAll(req.Body, maxTokenForm, "token request form")
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		form, err := url.ParseQuery(string(data))
		if err != nil {
			return nil, errors.New("token request form: not URL-encoded")
		}
		if narrow(form, "scope") {
			data = []byte(form.Encode())
		}
		req = req.Clone(req.Context())
		body := string(data)
		req.Body = io.NopCloser(strings.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
		req.ContentLength = int64(len(body))
		return req, nil
	}
	return req, nil
}

// narrow rewrites the scopes of values[key] to repository pull scopes and
// reports whether it changed anything.
func narrow(values url.Values, key string) bool {
	scopes, ok := values[key]
	if !ok {
		return false
	}
	var out []string
	changed := false
	for _, field := range scopes {
		var kept []string
		for _, s := range strings.Fields(field) {
			n := pullScope(s)
			if n != s {
				changed = true
			}
			if n != "" {
				kept = append(kept, n)
			}
		}
		if len(kept) > 0 {
			out = append(out, strings.Join(kept, " "))
		}
	}
	if !changed {
		return false
	}
	if len(out) == 0 {
		values.Del(key)
	} else {
		values[key] = out
	}
	return true
}

// catalogScope is the scope of the catalog listing (distribution
// docs/spec/auth/scope.md, resource type "registry"), which keyward scan
// asks for.
const catalogScope = "registry:catalog:*"

// pullScope returns scope narrowed to pull, or "" when it grants nothing
// keyward needs.
func pullScope(scope string) string {
	if scope == catalogScope {
		return scope // listing the catalog reads and changes nothing
	}
	i := strings.LastIndex(scope, ":")
	if i < 0 || !strings.HasPrefix(scope, "repository:") {
		return ""
	}
	for _, a := range strings.Split(scope[i+1:], ",") {
		if a == "pull" {
			return scope[:i+1] + "pull"
		}
	}
	return ""
}

// maxTokens bounds the tokens a tokenCache keeps and the refused tokens an
// authTracker remembers, for a Remote that lives as long as a server: one
// token per registry and repository, so past it one is dropped for each
// new one (and fetched again when next needed).
const maxTokens = 4096

// tokenCache is an auth.Cache that fetches a token once per registry and
// scope and keeps it until the registry refuses it. oras-go's own cache
// forgets that a fetch happened once it completes: every request sent
// before the first token arrived then fetches another.
type tokenCache struct {
	tracker    *authTracker
	refusalTTL time.Duration // 0: a refusal is remembered for good

	mu       sync.Mutex
	schemes  map[string]auth.Scheme
	tokens   map[string]string
	flights  map[string]*flight
	refusals map[string]refusal // token service refused the credentials
}

// refusal is a token service's refusal of the credentials, and when it
// was made.
type refusal struct {
	err error
	at  time.Time
}

type flight struct {
	done  chan struct{}
	token string
	err   error
}

func newTokenCache(tracker *authTracker, refusalTTL time.Duration) *tokenCache {
	return &tokenCache{tracker: tracker, refusalTTL: refusalTTL, schemes: map[string]auth.Scheme{}, tokens: map[string]string{},
		flights: map[string]*flight{}, refusals: map[string]refusal{}}
}

// cacheKey is the key of a token: oras-go asks for the scopes it hinted
// ("repository:x:pull") and stores under those merged with the challenge's
// ("repository:x:pull,push" from some registries); narrowed to pull, as
// the token request is (pullOnly), both find the same token.
func cacheKey(registry string, scheme auth.Scheme, key string) string {
	var scopes []string
	for _, s := range strings.Fields(key) {
		if n := pullScope(s); n != "" {
			scopes = append(scopes, n)
		}
	}
	if len(scopes) > 0 {
		sort.Strings(scopes)
		scopes = slices.Compact(scopes)
		key = strings.Join(scopes, " ")
	}
	return registry + " " + scheme.String() + " " + key
}

// GetScheme implements auth.Cache.
func (c *tokenCache) GetScheme(_ context.Context, registry string) (auth.Scheme, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.schemes[registry]
	if !ok {
		return auth.SchemeUnknown, errdef.ErrNotFound
	}
	return s, nil
}

// GetToken implements auth.Cache.
func (c *tokenCache) GetToken(_ context.Context, registry string, scheme auth.Scheme, key string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.schemes[registry] != scheme {
		return "", errdef.ErrNotFound
	}
	t, ok := c.tokens[cacheKey(registry, scheme, key)]
	if !ok {
		return "", errdef.ErrNotFound
	}
	return t, nil
}

// Set implements auth.Cache: it returns the token of the scope when there
// is one the registry has not refused, else fetches one, once for all the
// callers waiting for it. A token service that refused the credentials is
// not asked again for the scope during the run (for RefusalTTL when set).
func (c *tokenCache) Set(ctx context.Context, registry string, scheme auth.Scheme, key string, fetch func(context.Context) (string, error)) (string, error) {
	k := cacheKey(registry, scheme, key)
	c.mu.Lock()
	if t, ok := c.tokens[k]; ok && !c.tracker.isRejected(t) {
		c.schemes[registry] = scheme
		c.mu.Unlock()
		return t, nil
	}
	if r, ok := c.refusals[k]; ok {
		if c.refusalTTL <= 0 || time.Since(r.at) < c.refusalTTL {
			c.mu.Unlock()
			return "", r.err
		}
		delete(c.refusals, k)
	}
	f, waiting := c.flights[k]
	if !waiting {
		f = &flight{done: make(chan struct{})}
		c.flights[k] = f
	}
	c.mu.Unlock()
	if waiting {
		select {
		case <-f.done:
			return f.token, f.err
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	fetchCtx := ctx
	if scheme == auth.SchemeBearer {
		fetchCtx = context.WithValue(ctx, tokenRequestKey{}, registry)
	}
	f.token, f.err = fetch(fetchCtx)
	c.mu.Lock()
	delete(c.flights, k)
	if f.err == nil {
		if old, ok := c.tokens[k]; ok {
			// The token replaced was refused: it is never sent again.
			c.tracker.mu.Lock()
			delete(c.tracker.rejected, old)
			c.tracker.mu.Unlock()
		} else if len(c.tokens) >= maxTokens {
			for other := range c.tokens {
				delete(c.tokens, other)
				break
			}
		}
		c.tokens[k] = f.token
		c.schemes[registry] = scheme
	} else if refused(f.err) {
		if len(c.refusals) >= maxTokens {
			clear(c.refusals)
		}
		c.refusals[k] = refusal{err: f.err, at: time.Now()}
	}
	c.mu.Unlock()
	close(f.done)
	return f.token, f.err
}

// refused reports a token service that refused the credentials (401 or
// 403): asking again with the same credentials gets the same answer and
// may lock the account.
func refused(err error) bool {
	var resp *errcode.ErrorResponse
	return errors.As(err, &resp) && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden)
}
