package serve

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/registryauth"
	"github.com/keyward/keyward/verify"
)

// Bounds of POST /v1/verify.
const (
	// MaxRequestBody bounds the body of one request.
	MaxRequestBody = 1 << 20
	// MaxReferences bounds the references of one request.
	MaxReferences = 1000
	// referenceConcurrency is how many references of one request are
	// verified at once.
	referenceConcurrency = 16
	// maxTrustStoreFile bounds each file hashed for the trust store digest.
	maxTrustStoreFile = 16 << 20
)

// Options are what the configuration file does not say: the process's
// environment.
type Options struct {
	// Getenv reads the environment (DOCKER_CONFIG, HOME for registry
	// credentials); nil means none.
	Getenv func(string) string
	// PluginDir is the folder of notation verification plugins.
	PluginDir string
	// Logger receives the server's log; nil discards it.
	Logger *slog.Logger
	// OnReload, if set, is called after each reload of a policy set
	// (set is its name, "default" for policy) or of the configuration
	// file (set ""): err is nil when the change was swapped in, else the
	// problem that refused it. It runs on the reload goroutine, for
	// metrics.
	OnReload func(set string, err error)
}

// ImageRequest is one image to verify on behalf of a namespace.
type ImageRequest struct {
	// Namespace chooses the policy set; "" is the default policy.
	Namespace string
	// Reference is a keyward reference (host/repository[:tag][@digest]),
	// already normalized.
	Reference string
	// PullSecrets are the names of the pod's imagePullSecrets in
	// Namespace, used as registry credentials with kubernetes.pullSecrets.
	PullSecrets []string
}

// Server is keyward serve: the HTTP API over the policy sets (a
// [verify.Batch] each, reloaded when their files change) and a verdict
// [Cache].
type Server struct {
	cfg  *Config
	opts Options
	log  *slog.Logger
	// table is the policy sets requests choose from; reloads replace it.
	table    atomic.Pointer[policyTable]
	hasher   *fileHasher
	reload   reloader
	reloadMu sync.Mutex // one reload at a time
	// remotes are the registry clients, one per credential set (see
	// newRemote), each living as long as the server.
	remotes *remotePool
	// static are registry.credentials by registry; docker is the docker
	// config's credential function (nil: none).
	static map[string]*passwordCredential
	docker auth.CredentialFunc
	certs  *certReloader // nil with plainHTTP

	// kube is the Kubernetes API, made on first use.
	kubeMu      sync.Mutex
	kube        kubeAPI
	nsLabels    *ttlCache[map[string]string]
	pullSecrets *ttlCache[*loadedPullSecret]

	metrics *Metrics
	sigs    *oci.SignatureCache // shared by the server's Remotes
	redis   *redisCache         // nil without cache.redis
	idleMu  sync.Mutex
	idle    []interface{ CloseIdleConnections() } // the Remotes' transports

	ready atomic.Bool
	// cache is created by Serve, under the server's lifetime context.
	cacheMu sync.Mutex
	cache   *Cache
}

// New loads the default policy set and prepares the registry client; it
// fails when the trust policy, the certificate or the registry CA file
// cannot be used. Zero timeouts in cfg mean the defaults; a zero cache
// configuration keeps no verdict.
func New(cfg *Config, o Options) (*Server, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := *cfg
	// A Config built by hand gets the defaults LoadConfig gives.
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.RegistryRequestTimeout <= 0 {
		c.RegistryRequestTimeout = DefaultRegistryRequestTimeout
	}
	if c.Reload.Interval <= 0 {
		c.Reload.Interval = DefaultReloadInterval
	}
	cfg = &c
	s := &Server{cfg: cfg, opts: o, log: log, hasher: newFileHasher(),
		reload:      reloader{refused: map[string]string{}},
		static:      staticCredentials(cfg.Registry.Credentials),
		nsLabels:    newTTLCache[map[string]string](kubeTTL, kubeCacheEntries),
		pullSecrets: newTTLCache[*loadedPullSecret](kubeTTL, kubeCacheEntries),
		metrics:     NewMetrics(),
	}
	maxBytes := cfg.Cache.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	s.sigs = oci.NewSignatureCache(maxBytes / 2)
	s.metrics.WatchSignatures(s.sigs)
	var configSum string
	if cfg.File != "" {
		var err error
		if configSum, err = s.hasher.sum(cfg.File); err != nil {
			return nil, fmt.Errorf("read the configuration: %w", err)
		}
	}
	t, err := loadTable(cfg, nil, o, s.hasher)
	if err != nil {
		return nil, err
	}
	t.config = configSum
	s.table.Store(t)
	if t.needsLabels() || cfg.Kubernetes.PullSecrets {
		// Fail at start, not at the first request.
		if _, err := s.kubeClient(); err != nil {
			return nil, err
		}
	}
	ro, docker, err := newSource(cfg, o)
	if err != nil {
		return nil, err
	}
	s.docker = docker
	if c, ok := ro.Transport.(interface{ CloseIdleConnections() }); ok {
		s.idle = append(s.idle, c)
	}
	s.remotes = newRemotePool(ro, s.newRemote, s.metrics.UntrackRemote)
	if cfg.Cache.Redis != nil {
		if s.redis, err = newRedisCache(cfg.Cache.Redis, log, s.metrics); err != nil {
			return nil, err
		}
	}
	if cfg.TLS != nil {
		if s.certs, err = newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newSource returns the registry client options of the configuration, as
// keyward verify builds its one from its flags, with one HTTP transport
// every client shares (oci.NewTransport, the one oci.NewRemote builds for
// itself), and the docker config's credential function. Each client
// reaches registries with the credential function of its credential set.
func newSource(cfg *Config, o Options) (oci.RemoteOptions, auth.CredentialFunc, error) {
	plain := map[string]bool{}
	for _, h := range cfg.Registry.PlainHTTPHosts {
		plain[h] = true
	}
	ro := oci.RemoteOptions{
		PlainHTTP:      func(host string) bool { return plain[host] || oci.IsLocalhost(host) },
		UserAgent:      "keyward/" + version.Version,
		RequestTimeout: cfg.RegistryRequestTimeout,
	}
	if cfg.Registry.CAFile != "" {
		pool, err := oci.RootCAsWithFile(cfg.Registry.CAFile)
		switch {
		case errors.Is(err, oci.ErrNoCertificate):
			return oci.RemoteOptions{}, nil, fmt.Errorf("registry.caFile %s holds no PEM certificate: give a file of PEM CA certificates", cfg.Registry.CAFile)
		case err != nil:
			return oci.RemoteOptions{}, nil, fmt.Errorf("registry.caFile: %w", err)
		}
		ro.RootCAs = pool
	}
	getenv := o.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if dir := cfg.Registry.DockerConfig; dir != "" {
		inner := getenv
		getenv = func(k string) string {
			if k == "DOCKER_CONFIG" {
				return dir
			}
			return inner(k)
		}
	}
	// No registry is named on a command line: NOTATION_USERNAME and
	// NOTATION_PASSWORD apply to none, the docker config to all.
	res, err := registryauth.New(registryauth.Options{Getenv: getenv})
	if err != nil {
		return oci.RemoteOptions{}, nil, fmt.Errorf("registry credentials: %w", err)
	}
	ro.Transport = oci.NewTransport(ro)
	return ro, res.Credential, nil
}

// Handler serves /healthz, /readyz, /metrics, POST /v1/verify, and the
// admission webhooks and Gatekeeper provider the configuration enables,
// each request counted, timed and logged (see instrument); every response
// carries the ServerTimingHeader.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "not ready\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /v1/verify", s.serveVerify)
	mux.Handle("GET /metrics", s.metrics.Handler())
	s.admissionRoutes(mux)
	return serverTiming(s.instrument(mux))
}

// VerifyRequest is the body of POST /v1/verify.
type VerifyRequest struct {
	// References are registry references, host[:port]/repository@digest
	// or :tag.
	References []string `json:"references"`
}

// VerifyResponse is the answer of POST /v1/verify: one result per
// reference, in the order given, each an object of
// verify-result.schema.json (as keyward verify --output json prints).
type VerifyResponse struct {
	Results []*verify.ReferenceResult `json:"results"`
}

// apiError is the body of a request refused.
type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	var req VerifyRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{fmt.Sprintf("the request body is larger than %d bytes: send fewer references at once", MaxRequestBody)})
			return
		}
		writeJSON(w, http.StatusBadRequest, apiError{`the request body is not {"references": ["host/repository@sha256:..."]}: ` + err.Error()})
		return
	}
	if dec.More() {
		writeJSON(w, http.StatusBadRequest, apiError{"the request body holds more than one JSON value"})
		return
	}
	switch n := len(req.References); {
	case n == 0:
		writeJSON(w, http.StatusBadRequest, apiError{`"references" is empty: give at least one reference`})
		return
	case n > MaxReferences:
		writeJSON(w, http.StatusBadRequest, apiError{fmt.Sprintf(`"references" has %d references, more than the %d allowed: split the request`, n, MaxReferences)})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	writeJSON(w, http.StatusOK, VerifyResponse{Results: s.VerifyAll(ctx, req.References)})
}

// VerifyAll verifies references concurrently and returns their results in
// the order given. Every result is either a verdict of the verification
// pipeline or verified false with an error.
func (s *Server) VerifyAll(ctx context.Context, refs []string) []*verify.ReferenceResult {
	results := make([]*verify.ReferenceResult, len(refs))
	sem := make(chan struct{}, referenceConcurrency)
	var wg sync.WaitGroup
	for i, raw := range refs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			results[i] = s.Verify(ctx, raw)
		}()
	}
	wg.Wait()
	return results
}

// Verify verifies one reference against the default policy, through the
// verdict cache: VerifyImage without a namespace.
func (s *Server) Verify(ctx context.Context, raw string) *verify.ReferenceResult {
	return s.VerifyImage(ctx, ImageRequest{Reference: raw})
}

// VerifyImage verifies one image against the policy set of its namespace,
// with the credentials of its pull secrets, through the verdict cache. A
// tag is resolved again once cache.resolutionTTL has passed, so that a
// moved tag is answered with the verdict of the artifact it names after at
// most that long; the result names the digest verified. When the policy set
// cannot be chosen (the namespace's labels cannot be read) or a pull
// secret cannot be read, the answer is verified: false with the reason.
func (s *Server) VerifyImage(ctx context.Context, r ImageRequest) (res *verify.ReferenceResult) {
	defer func() { s.observe(r.Reference, res) }() // after the recover below
	start := time.Now()
	raw := r.Reference
	failed := func(kind verify.ArtifactErrorKind, err error) *verify.ReferenceResult {
		return &verify.ReferenceResult{Version: verify.ResultVersion, Reference: raw, Signatures: []*verify.Result{},
			Error: &verify.ReferenceError{Kind: kind, Message: err.Error()}, ElapsedMS: time.Since(start).Milliseconds()}
	}
	defer func() {
		if p := recover(); p != nil {
			res = failed(verify.ErrorRetrievalFailed, fmt.Errorf("keyward serve: internal error: %v", p))
		}
	}()
	ref, err := reference.Parse(raw)
	if err != nil {
		return failed(verify.ErrorResolve, err)
	}
	set, err := s.table.Load().choose(ctx, r.Namespace, s.namespaceLabels)
	if err != nil {
		return failed(verify.ErrorPolicy, err)
	}
	sel, err := set.batch.Policy.Select(ref)
	if err != nil || sel.Statement.SkipsVerification() {
		// Decided by the policy alone, with no registry request.
		b := *set.batch
		b.Source = s.sourceFor(nil)
		return b.Verify(ctx, ref)
	}
	creds, err := s.credentialsFor(ctx, r)
	if err != nil {
		out := failed(verify.ErrorRetrievalFailed, err)
		out.Scope, out.Statement, out.Level = ref.Scope, sel.Statement.Name(), sel.Statement.Level()
		return out
	}
	d := ref.Digest
	if d == "" {
		a, err := s.sourceFor(creds).Resolve(oci.WithRequestBudget(ctx, verify.RequestBudget(1)), ref)
		if err != nil {
			// As verify.Batch reports a reference it cannot resolve.
			out := failed(verify.ErrorResolve, err)
			out.Scope, out.Statement, out.Level = ref.Scope, sel.Statement.Name(), sel.Statement.Level()
			return withCredentialHint(out)
		}
		d = a.Descriptor.Digest
	}
	// A reference that is already scope@digest is its own pinned form:
	// parsing it again would give the same Reference.
	pinned := ref
	if p := ref.Pinned(d); p != raw {
		if pinned, err = reference.Parse(p); err != nil {
			return failed(verify.ErrorResolve, err)
		}
	}
	shared := s.cacheFor(ctx).Do(ctx, cacheKey(set, creds, ref.Scope, d), s.cfg.RequestTimeout,
		func(ctx context.Context) *verify.ReferenceResult {
			b := *set.batch
			b.Source = s.sourceFor(creds)
			return b.Verify(ctx, pinned)
		},
		func(err error) *verify.ReferenceResult {
			r := failed(verify.ErrorRetrievalFailed, err)
			r.Scope = ref.Scope
			return r
		})
	// The shared result is read by every caller: only its copy changes.
	out := *shared
	out.Reference, out.Tag = raw, ref.Tag
	return withCredentialHint(&out)
}

// refused is how package oci says that a registry refused the request for
// want of a credential, or refused the one sent (401).
const refused = "requires authentication"

// cliLogin is the CLI's way of giving a registry a credential, which
// package oci names in a refusal; it does not apply to keyward serve.
var cliLogin = regexp.MustCompile("log in with `docker login [^`]*` or `notation login [^`]*`, or pass --username and --password-stdin")

// serveLogin is keyward serve's way of giving a registry a credential.
const serveLogin = "keyward serve: give the pod an imagePullSecret for the registry, with kubernetes.pullSecrets: true, or add the registry to registry.credentials or to the docker config of registry.dockerConfig"

// withCredentialHint puts keyward serve's ways of giving a registry a
// credential into a denial for want of a good one, in place of the CLI's
// that the oci message names, so that the fix comes right after the
// registry, before the registry's own answer: an admission denial is
// clipped per image, and the end of a long message is lost. r is the
// caller's copy.
func withCredentialHint(r *verify.ReferenceResult) *verify.ReferenceResult {
	if r.Error != nil && strings.Contains(r.Error.Message, refused) {
		e := *r.Error
		if m := cliLogin.ReplaceAllLiteralString(e.Message, serveLogin); m != e.Message {
			e.Message = m
		} else {
			e.Message += " (" + serveLogin + ")"
		}
		r.Error = &e
	}
	return r
}

// cacheKey is what a verdict depends on: the artifact (its digest, in its
// repository: signatures are stored next to it), the trust policy and the
// trust store of the policy set chosen (so that a reloaded set never
// reuses a verdict of the set it replaced), and, when the request's pull
// secrets were used, which secrets: a verdict that failed for want of a
// credential is never served to a pod that has one. Requests without pull
// secrets share verdicts whatever registry credentials reached them: a
// verdict is about the artifact, not about who may pull it.
func cacheKey(set *loadedSet, creds *credentialSet, scope string, d digest.Digest) string {
	return strings.Join([]string{scope, d.String(), set.policyDigest, set.storeDigest, creds.key}, "\x00")
}

// cacheFor returns the verdict cache, made on first use when Serve has not
// made it (the handler used alone, in tests).
func (s *Server) cacheFor(ctx context.Context) *Cache {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	if s.cache == nil {
		s.cache = s.newCache(context.WithoutCancel(ctx))
	}
	return s.cache
}

// Run listens on the configured address and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln (HTTPS unless plainHTTP) until ctx ends, then stops
// accepting connections and waits for the requests in flight, at most the
// request timeout and a little more, before returning. It closes the
// connections to Redis when it returns: a server serves once.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.closeIdleConnections()
	if s.redis != nil {
		defer s.redis.close()
	}
	s.cacheMu.Lock()
	if s.cache == nil {
		// Verifications outlive the shutdown signal, each bounded by the
		// request timeout, so that requests in flight are drained with
		// their verdicts.
		s.cache = s.newCache(context.WithoutCancel(ctx))
	}
	s.cacheMu.Unlock()
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       s.cfg.RequestTimeout + 10*time.Second,
		WriteTimeout:      s.cfg.RequestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if s.certs != nil {
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.getCertificate}
	}
	drained := make(chan error, 1)
	go func() {
		<-ctx.Done()
		s.ready.Store(false)
		// The requests in flight keep their own deadlines (the request
		// timeout); Shutdown waits for them.
		sctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout+5*time.Second)
		defer cancel()
		drained <- hs.Shutdown(sctx)
	}()
	go s.reloadLoop(ctx, s.cfg.Reload.Interval)
	s.log.Info("keyward serve listening", "address", ln.Addr().String(), "tls", s.certs != nil)
	s.ready.Store(true)
	var err error
	if s.certs != nil {
		err = hs.ServeTLS(ln, "", "")
	} else {
		err = hs.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		s.ready.Store(false)
		return fmt.Errorf("serve: %w", err)
	}
	if err := <-drained; err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	return nil
}

// Ready reports whether the server is listening with its policy loaded.
func (s *Server) Ready() bool { return s.ready.Load() }
