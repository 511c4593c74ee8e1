package oci

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"
	"oras.land/oras-go/v2/registry/remote/retry"

	"github.com/keyward/keyward/reference"
)

// RemoteOptions configures a [Remote].
type RemoteOptions struct {
	// PlainHTTP reports whether a registry host is reached over plain
	// HTTP instead of HTTPS. Nil means HTTPS everywhere.
	PlainHTTP func(host string) bool
	// RootCAs verifies registry TLS certificates; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// Credential returns the credential for a registry host; nil means
	// anonymous access.
	Credential auth.CredentialFunc
	// UserAgent is sent with every request.
	UserAgent string
	// MaxConnsPerHost bounds the connections kept open to one registry
	// (default 16).
	MaxConnsPerHost int
	// RequestTimeout bounds one HTTP request from the connection to the
	// last byte of its body; each retry has its own (default
	// DefaultRequestTimeout).
	RequestTimeout time.Duration
	// Retries is how often a request that failed with 408, 429, 5xx or
	// a network timeout is retried (default 4); RetryWait is the first
	// wait, doubled at each retry and capped at 16 times itself (default
	// 250ms). A Retry-After header from the registry is honoured. A request
	// that used up its whole RequestTimeout is not retried: a registry
	// that slow fails its reference at once.
	Retries   int
	RetryWait time.Duration
	// CacheBytes bounds the envelopes kept to serve again during the run
	// (default DefaultCacheBytes); envelopes over 1 MiB are never kept.
	CacheBytes int64
	// MaxInFlightBytes bounds the envelope bytes read or being judged at
	// once, all references together (default DefaultMaxInFlightBytes).
	MaxInFlightBytes int64
	// Transport replaces the HTTP transport (tests); the options above
	// that configure a transport are then ignored.
	Transport http.RoundTripper
	// ResolutionTTL is how long a resolution (tag or digest to
	// descriptor) is remembered. Zero remembers it, failures included,
	// for the Remote's lifetime: one keyward verify run sees one answer
	// per reference. Above zero, for a Remote that lives as long as a
	// server: a resolution is kept for ResolutionTTL, and a failure only
	// while it is in flight (the callers asking at that moment share it),
	// so that a moved tag or a registry back up is seen again soon.
	ResolutionTTL time.Duration
	// RefusalTTL is how long a token service's refusal of the credentials
	// (401 or 403) is remembered before it is asked again; zero means for
	// the Remote's lifetime (a run must not lock an account by asking
	// again), a server sets a short time so that fixed credentials are
	// taken up without a restart.
	RefusalTTL time.Duration
	// Signatures is a signature cache shared with other Remotes (a
	// server's clients, one per credential set); nil gives the Remote one
	// of its own, of CacheBytes. Signatures are keyed by repository,
	// manifest digest and subject digest, and checked against those
	// digests: immutable, and safe to share.
	Signatures *SignatureCache
}

// maxRedirects bounds the redirects one request follows (net/http's
// default is 10).
const maxRedirects = 5

// Remote reads artifacts and signatures from registries.
type Remote struct {
	client    *auth.Client
	tracker   *authTracker
	plainHTTP func(string) bool

	mu       sync.Mutex
	repos    map[string]*repository
	resolved memo[ocispec.Descriptor]
	fetching memo[*Signature] // in flight only: entries leave when done
	sigs     *sigCache        // small envelopes, within a byte budget
	inFlight *byteSem         // envelope bytes read or being judged
}

var _ Source = (*Remote)(nil)

// NewRemote returns a Remote. It makes no request until used.
func NewRemote(o RemoteOptions) *Remote {
	timeout := o.requestTimeout()
	base := o.Transport
	if base == nil {
		base = NewTransport(o)
	}
	retries, wait := o.Retries, o.RetryWait
	if retries <= 0 {
		retries = 4
	}
	if wait <= 0 {
		wait = 250 * time.Millisecond
	}
	policy := &retry.GenericPolicy{
		Retryable: retry.DefaultPredicate,
		Backoff:   retry.ExponentialBackoff(wait, 2, 0.1),
		MinWait:   wait,
		MaxWait:   16 * wait,
		MaxRetry:  retries,
	}
	tracker := newAuthTracker(&retry.Transport{Base: &guardTransport{base: base, timeout: timeout}, Policy: func() retry.Policy { return policy }})
	client := &auth.Client{
		// oras' retry transport retries only what is safe to repeat: every
		// request here is a GET or HEAD, but for the OAuth2 token form,
		// whose POST has no side effect.
		Client: &http.Client{
			Transport: tracker,
			// A registry that redirects in a loop stops here, well before
			// the request budget.
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= maxRedirects {
					return fmt.Errorf("stopped after %d redirects", maxRedirects)
				}
				return nil
			},
		},
		Cache:      newTokenCache(tracker, o.RefusalTTL),
		Credential: tracker.observeCredential(o.Credential),
	}
	if o.UserAgent != "" {
		client.SetUserAgent(o.UserAgent)
	}
	plain := o.PlainHTTP
	if plain == nil {
		plain = func(string) bool { return false }
	}
	cacheBytes, inFlight := o.CacheBytes, o.MaxInFlightBytes
	if cacheBytes <= 0 {
		cacheBytes = DefaultCacheBytes
	}
	if inFlight <= 0 {
		inFlight = DefaultMaxInFlightBytes
	}
	sigs := o.Signatures
	if sigs == nil {
		sigs = NewSignatureCache(cacheBytes)
	}
	return &Remote{client: client, tracker: tracker, plainHTTP: plain, repos: map[string]*repository{},
		resolved: memo[ocispec.Descriptor]{ttl: o.ResolutionTTL},
		sigs:     sigs.c, inFlight: &byteSem{max: inFlight}}
}

// maxRepositories bounds the repository clients a Remote keeps; past it,
// one is dropped for each new one (it then probes the referrers API again
// when next used). A run rarely names that many repositories; a server
// asked about ever new ones stays bounded.
const maxRepositories = 4096

// repository returns the shared client of a reference's repository.
func (r *Remote) repository(ref reference.Reference) *repository {
	key := ref.Scope
	r.mu.Lock()
	defer r.mu.Unlock()
	if repo, ok := r.repos[key]; ok {
		return repo
	}
	if len(r.repos) >= maxRepositories {
		for k := range r.repos {
			delete(r.repos, k) // a holder keeps using its own pointer
			break
		}
	}
	repo := &repository{
		Repository: &remote.Repository{
			Client:           r.client,
			Reference:        registry.Reference{Registry: ref.Registry, Repository: ref.Repository},
			PlainHTTP:        r.plainHTTP(ref.Registry),
			MaxMetadataBytes: MaxManifestSize,
		},
		probed: make(chan struct{}),
	}
	r.repos[key] = repo
	return repo
}

// repository is a repository client shared by the references of a run.
type repository struct {
	*remote.Repository

	// The first listing of signatures in the repository finds out whether
	// the registry serves the referrers API (oras-go remembers it in the
	// client); the others wait until it knows, so that a run probes once
	// per repository, as notation does verifying one artifact at a time,
	// not once per artifact listed at the same moment.
	mu      sync.Mutex
	probing bool
	probed  chan struct{} // closed when the first listing has its answer
}

// referrers is Repository.Referrers, with the capability probe made once.
func (r *repository) referrers(ctx context.Context, desc ocispec.Descriptor, artifactType string, fn func([]ocispec.Descriptor) error) error {
	r.mu.Lock()
	first := !r.probing
	r.probing = true
	r.mu.Unlock()
	if !first {
		select {
		case <-r.probed:
		case <-ctx.Done():
			return ctx.Err()
		}
		return r.Referrers(ctx, desc, artifactType, fn)
	}
	// The capability is known once the first page arrives (oras-go sets
	// "unsupported" before falling back to the tag schema; with the API a
	// waiter's request is the request it makes anyway), or once the
	// listing ends, whatever its outcome: a waiter whose probe failed
	// probes again itself.
	var once sync.Once
	release := func() { once.Do(func() { close(r.probed) }) }
	defer release()
	return r.Referrers(ctx, desc, artifactType, func(page []ocispec.Descriptor) error {
		release()
		return fn(page)
	})
}

// Resolve resolves a reference to its manifest descriptor. A tag is resolved
// once per Remote (once per ResolutionTTL when set); a digest reference is
// checked against what the registry serves.
func (r *Remote) Resolve(ctx context.Context, ref reference.Reference) (Artifact, error) {
	if ref.IsLayout() || ref.Registry == "" {
		return Artifact{}, fmt.Errorf("reference %q does not name a registry", ref.Raw)
	}
	object := ref.Object()
	ctx = ensureBudget(ctx)
	desc, err := r.resolved.do(ctx, ref.Scope+"@"+object, func() (ocispec.Descriptor, error) {
		desc, err := r.repository(ref).Resolve(ctx, object)
		if err != nil {
			return desc, r.describe(ref.Registry, fmt.Sprintf("resolve %s", ref.Raw), err)
		}
		if ref.Digest != "" && desc.Digest != ref.Digest {
			return desc, fmt.Errorf("user input digest %s does not match the resolved digest %s", ref.Digest, desc.Digest)
		}
		return desc, nil
	})
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Reference: ref, Descriptor: desc}, nil
}

// Signatures lists the artifact's signature manifests through the
// referrers API, or the referrers tag schema where the API is missing.
func (r *Remote) Signatures(ctx context.Context, a Artifact, fn func(ocispec.Descriptor) error) error {
	ref := a.Reference
	repo := r.repository(ref)
	ctx = withListing(ensureBudget(ctx))
	err := repo.referrers(ctx, a.Descriptor, ArtifactTypeSignature, func(referrers []ocispec.Descriptor) error {
		for _, d := range referrers {
			if !isSignatureManifest(d) {
				continue // a registry that ignored the artifactType filter
			}
			if err := fn(d); err != nil {
				return &callbackError{err}
			}
		}
		return nil
	})
	var callbackErr *callbackError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &callbackErr):
		if errors.Is(callbackErr.err, ErrStop) {
			return nil
		}
		return callbackErr.err
	}
	return r.describe(ref.Registry, "list the signatures of "+a.Descriptor.Digest.String(), err)
}

// callbackError marks an error of the caller's callback, to return as is.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

// Fetch fetches a signature manifest and its envelope. Signatures with
// small envelopes are kept (within CacheBytes) and fetched once per Remote;
// concurrent fetches of the same signature share one download. The bytes of
// envelopes read and not yet released count against MaxInFlightBytes:
// Fetch waits while the budget is spent.
func (r *Remote) Fetch(ctx context.Context, a Artifact, manifest ocispec.Descriptor) (*Signature, error) {
	ref := a.Reference
	ctx = ensureBudget(ctx)
	key := ref.Scope + "@" + manifest.Digest.String() + "#" + a.Descriptor.Digest.String()
	if sig, ok := r.sigs.get(key); ok {
		return sig, nil
	}
	sig, err := r.fetching.do(ctx, key, func() (*Signature, error) {
		defer r.fetching.forget(key)
		return r.fetch(ctx, ref, a.Descriptor, manifest)
	})
	if err != nil {
		return nil, err
	}
	if len(sig.Envelope) <= maxCachedEnvelope {
		r.sigs.put(key, sig)
	}
	return sig, nil
}

// fetch reads and checks a signature manifest and its envelope, holding
// the envelope's bytes against the in-flight budget until the Signature
// is released (at once for envelopes small enough to keep).
func (r *Remote) fetch(ctx context.Context, ref reference.Reference, subject, manifest ocispec.Descriptor) (*Signature, error) {
	repo := r.repository(ref)
	rc, err := repo.Manifests().Fetch(ctx, manifest)
	if err != nil {
		return nil, r.describe(ref.Registry, "fetch signature manifest "+manifest.Digest.String(), err)
	}
	raw, err := readVerified(rc, manifest, MaxManifestSize)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("signature manifest: %w", err)
	}
	env, annotations, err := readManifest(raw, manifest, subject)
	if err != nil {
		return nil, err
	}
	held := env.Size
	if held <= maxCachedEnvelope {
		held = 0 // kept in the cache, whose own budget bounds it
	}
	if err := r.inFlight.acquire(ctx, held); err != nil {
		return nil, err
	}
	release := sync.OnceFunc(func() { r.inFlight.release(held) })
	rc, err = repo.Blobs().Fetch(ctx, env)
	if err != nil {
		release()
		return nil, r.describe(ref.Registry, "fetch signature envelope "+env.Digest.String(), err)
	}
	defer rc.Close()
	data, err := readVerified(rc, env, MaxEnvelopeSize)
	if err != nil {
		release()
		return nil, fmt.Errorf("signature envelope: %w", err)
	}
	sig := &Signature{Manifest: manifest, MediaType: env.MediaType, Envelope: data, Annotations: annotations}
	if held > 0 {
		sig.release = release
	}
	return sig, nil
}

// describe turns a registry error into a message that says what failed
// and, where it can, what to do.
func describe(host, action string, err error) error {
	var resp *errcode.ErrorResponse
	switch {
	case errors.As(err, &resp):
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("%s: registry %s requires authentication or refused the credentials (401): log in with `docker login %s` or `notation login %s`, or pass --username and --password-stdin: %w", action, host, host, host, err)
		case http.StatusForbidden:
			return fmt.Errorf("%s: registry %s denied access (403): check the account's permissions: %w", action, host, err)
		case http.StatusNotFound:
			return fmt.Errorf("%s: not found in registry %s (404): check the repository, tag or digest: %w", action, host, err)
		case http.StatusTooManyRequests:
			return fmt.Errorf("%s: registry %s is rate limiting (429) and kept refusing after retries: try again later or lower --concurrency: %w", action, host, err)
		}
		if resp.StatusCode >= 500 {
			return fmt.Errorf("%s: registry %s failed (%d) and kept failing after retries: %w", action, host, resp.StatusCode, err)
		}
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		return fmt.Errorf("%s: registry %s requires authentication (401) and no credential is configured for it: log in with `docker login %s` or `notation login %s`, or pass --username and --password-stdin", action, host, host, host)
	case errors.Is(err, errdef.ErrNotFound):
		return fmt.Errorf("%s: not found in registry %s: check the repository, tag or digest", action, host)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: registry %s did not answer in time: %w", action, host, err)
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("%s: registry %s speaks plain HTTP: pass --plain-http if that is intended: %w", action, host, err)
	}
	var unknownCA x509.UnknownAuthorityError
	var wrongHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%s: registry %s presented a TLS certificate issued by a CA this machine does not trust: pass --ca-file with that CA's certificate (PEM): %w", action, host, err)
	case errors.As(err, &wrongHost):
		return fmt.Errorf("%s: registry %s presented a TLS certificate for another name: reach it by a name the certificate holds, or have it reissued: %w", action, host, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: registry %s presented a TLS certificate that is not valid (%s): %w", action, host, invalidReason(invalid), err)
	}
	var netErr *net.OpError
	if errors.As(err, &netErr) {
		return fmt.Errorf("%s: cannot reach registry %s: %w", action, host, err)
	}
	return fmt.Errorf("%s: %w", action, err)
}

// memo runs each keyed computation once and shares its result; concurrent
// callers of the same key wait for the first. With a ttl, a result is kept
// for ttl and a failure not at all once its callers have it; expired
// entries are swept at most once a ttl, so that the map holds what the
// last ttl or two asked for.
type memo[T any] struct {
	ttl time.Duration

	mu        sync.Mutex
	m         map[string]*memoEntry[T]
	lastSweep time.Time
}

type memoEntry[T any] struct {
	done    chan struct{}
	val     T
	err     error
	expires time.Time // zero while in flight, or without a ttl
}

// expired reports an entry past its ttl; m.mu is held.
func (e *memoEntry[T]) expired(now time.Time) bool {
	return !e.expires.IsZero() && !now.Before(e.expires)
}

// sweep drops the expired entries, at most once a ttl; m.mu is held.
func (m *memo[T]) sweep(now time.Time) {
	if now.Sub(m.lastSweep) < m.ttl {
		return
	}
	m.lastSweep = now
	for k, e := range m.m {
		if e.expired(now) {
			delete(m.m, k)
		}
	}
}

// forget drops a key, so that its value is no longer kept once the callers
// waiting for it have it.
func (m *memo[T]) forget(key string) {
	m.mu.Lock()
	delete(m.m, key)
	m.mu.Unlock()
}

func (m *memo[T]) do(ctx context.Context, key string, f func() (T, error)) (T, error) {
	m.mu.Lock()
	if m.m == nil {
		m.m = map[string]*memoEntry[T]{}
	}
	var now time.Time
	if m.ttl > 0 {
		now = time.Now()
		m.sweep(now)
	}
	e, ok := m.m[key]
	if !ok || e.expired(now) {
		e = &memoEntry[T]{done: make(chan struct{})}
		m.m[key] = e
		m.mu.Unlock()
		e.val, e.err = f()
		if m.ttl > 0 {
			m.mu.Lock()
			if e.err == nil {
				e.expires = time.Now().Add(m.ttl)
			} else if m.m[key] == e {
				delete(m.m, key)
			}
			m.mu.Unlock()
		}
		close(e.done)
		return e.val, e.err
	}
	m.mu.Unlock()
	select {
	case <-e.done:
		if m.ttl > 0 && e.err != nil && ctx.Err() == nil &&
			(errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded)) {
			// The caller that ran it gave up (its request ended): that is
			// no answer for this caller, whose own request goes on.
			return m.do(ctx, key, f)
		}
		return e.val, e.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// invalidReason names why a TLS certificate is invalid, in a few words.
func invalidReason(e x509.CertificateInvalidError) string {
	switch e.Reason {
	case x509.Expired:
		return "expired or not yet valid"
	case x509.NotAuthorizedToSign:
		return "its issuer is not a CA"
	case x509.IncompatibleUsage:
		return "not for TLS servers"
	}
	return "rejected by the TLS verifier"
}
