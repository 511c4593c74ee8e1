package serve

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/registryauth"
	"github.com/keyward/keyward/truststore"
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
}

// Server is keyward serve: the HTTP API over one [verify.Batch] and a
// verdict [Cache].
type Server struct {
	cfg   *Config
	log   *slog.Logger
	batch *verify.Batch
	// source returns the registry client of a verification: one
	// long-lived oci.Remote (see newRemote) shared by all requests.
	source func() oci.Source
	certs  *certReloader // nil with plainHTTP

	metrics *Metrics
	sigs    *oci.SignatureCache // shared by the server's Remotes
	redis   *redisCache         // nil without cache.redis
	idleMu  sync.Mutex
	idle    []interface{ CloseIdleConnections() } // the Remotes' transports

	policyDigest, storeDigest string

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
	cfg = &c
	s := &Server{cfg: cfg, log: log, metrics: NewMetrics()}
	maxBytes := cfg.Cache.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	s.sigs = oci.NewSignatureCache(maxBytes / 2)
	s.metrics.WatchSignatures(s.sigs)
	data, err := policy.ReadFile(cfg.Policy.TrustPolicy)
	if err != nil {
		return nil, fmt.Errorf("policy.trustPolicy: %w", err)
	}
	doc, err := policy.Parse(data, cfg.Policy.TrustPolicy, policy.TypeOCI)
	if err != nil {
		return nil, fmt.Errorf("policy.trustPolicy: %w", err)
	}
	sum := sha256.Sum256(data)
	s.policyDigest = hex.EncodeToString(sum[:])
	if s.storeDigest, err = treeDigest(cfg.Policy.TrustStore); err != nil {
		return nil, fmt.Errorf("policy.trustStore: %w", err)
	}
	verifier, err := verify.NewVerifier(verify.Options{
		TrustStore: truststore.New(cfg.Policy.TrustStore),
		PluginDir:  o.PluginDir,
	})
	if err != nil {
		return nil, fmt.Errorf("prepare the verifier: %w", err)
	}
	if s.source, err = newSource(cfg, o, s.newRemote); err != nil {
		return nil, err
	}
	if cfg.Cache.Redis != nil {
		if s.redis, err = newRedisCache(cfg.Cache.Redis, log, s.metrics); err != nil {
			return nil, err
		}
	}
	s.batch = &verify.Batch{Policy: doc, Verifier: verifier}
	if cfg.TLS != nil {
		if s.certs, err = newCertReloader(cfg.TLS.CertFile, cfg.TLS.KeyFile, log); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newSource returns the registry client of the configuration, as keyward
// verify builds its one from its flags, made by newRemote to live as long
// as the server.
func newSource(cfg *Config, o Options, newRemote func(oci.RemoteOptions) *oci.Remote) (func() oci.Source, error) {
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
			return nil, fmt.Errorf("registry.caFile %s holds no PEM certificate: give a file of PEM CA certificates", cfg.Registry.CAFile)
		case err != nil:
			return nil, fmt.Errorf("registry.caFile: %w", err)
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
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	ro.Credential = res.Credential
	remote := newRemote(ro)
	return func() oci.Source { return remote }, nil
}

// treeDigest hashes the names and contents of the regular files under dir,
// so that a changed trust store changes the cache keys.
func treeDigest(dir string) (string, error) {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read the trust store: %w", err)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, p := range names {
		data, err := bounded.ReadFile(p, maxTrustStoreFile, "trust store file "+p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, bounded.ErrNotRegular) {
				continue // a dangling or odd link: the trust store ignores it too
			}
			return "", fmt.Errorf("read the trust store: %w", err)
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%d:%s%d:", len(rel), rel, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Handler serves /healthz, /readyz, /metrics and POST /v1/verify, each
// request counted, timed and logged (see instrument).
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
	return s.instrument(mux)
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

// Verify verifies one reference, through the verdict cache. A tag is
// resolved again once cache.resolutionTTL has passed, so that a moved tag
// is answered with the verdict of the artifact it names after at most that
// long; the result names the digest verified.
func (s *Server) Verify(ctx context.Context, raw string) (res *verify.ReferenceResult) {
	defer func() { s.observe(raw, res) }() // after the recover below
	start := time.Now()
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
	sel, err := s.batch.Policy.Select(ref)
	if err != nil || sel.Statement.SkipsVerification() {
		// Decided by the policy alone, with no registry request.
		b := *s.batch
		b.Source = s.source()
		return b.Verify(ctx, ref)
	}
	d := ref.Digest
	if d == "" {
		a, err := s.source().Resolve(oci.WithRequestBudget(ctx, verify.RequestBudget(1)), ref)
		if err != nil {
			// As verify.Batch reports a reference it cannot resolve.
			r := failed(verify.ErrorResolve, err)
			r.Scope, r.Statement, r.Level = ref.Scope, sel.Statement.Name(), sel.Statement.Level()
			return r
		}
		d = a.Descriptor.Digest
	}
	pinned, err := reference.Parse(ref.Pinned(d))
	if err != nil {
		return failed(verify.ErrorResolve, err)
	}
	shared := s.cacheFor(ctx).Do(ctx, s.cacheKey(ref.Scope, d), s.cfg.RequestTimeout,
		func(ctx context.Context) *verify.ReferenceResult {
			b := *s.batch
			b.Source = s.source()
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
	return &out
}

// cacheKey is what a verdict depends on: the artifact (its digest, in its
// repository: signatures are stored next to it), the trust policy and the
// trust store.
func (s *Server) cacheKey(scope string, d digest.Digest) string {
	return strings.Join([]string{scope, d.String(), s.policyDigest, s.storeDigest}, "\x00")
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
