package serve

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/verify"
)

// Cache layers, the values of the layer label.
const (
	layerLocal  = "local"        // this process's verdict cache
	layerRedis  = "redis"        // the shared cache
	layerJoined = "singleflight" // joined a verification in flight
)

// latencyBuckets fit admission latencies: a cached verdict in well under
// a millisecond, a cold verification in tens to hundreds, the request
// timeout at most 30 s.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// maxRegistryLabels bounds the registry label's values: references name
// registries, and a caller naming ever new ones must not grow the metrics
// without bound; the registries past it are summed under "other".
const maxRegistryLabels = 64

// Metrics are the Prometheus metrics of a server, in a registry of their
// own (never the global default one), served at GET /metrics. A nil
// *Metrics records nothing. Safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	verdicts        *prometheus.CounterVec
	verifyDuration  prometheus.Histogram
	cacheHits       *prometheus.CounterVec
	cacheMisses     *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	redisErrors     *prometheus.CounterVec

	mu      sync.Mutex
	remotes []*oci.Remote // their registry counts are reported at scrape
	// retired are the counts of Remotes no longer kept (UntrackRemote),
	// so that the counters never go back.
	retired []oci.RegistryStats
	cache   *Cache // reported at scrape; nil until WatchCache
	sigs    *oci.SignatureCache
}

// NewMetrics returns the metrics of a server, with the Go runtime's and
// the process's (memory, CPU, file descriptors).
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_serve_requests_total",
		Help: "HTTP requests answered, by endpoint (the route's pattern; other for none) and status code."}, []string{"endpoint", "code"})
	m.requestDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "keyward_serve_request_duration_seconds",
		Help: "Time to answer an HTTP request, by endpoint.", Buckets: latencyBuckets}, []string{"endpoint"})
	m.verdicts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_serve_verdicts_total",
		Help: "Verdicts answered, per reference: verified, failed (unsigned, untrusted, tampered), skipped (a skip statement), error (registry unreachable, timeout, internal error; denied)."}, []string{"verdict"})
	m.verifyDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "keyward_serve_verification_duration_seconds",
		Help: "Time of one verification run (a verdict not found in any cache).", Buckets: latencyBuckets})
	m.cacheHits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_serve_cache_hits_total",
		Help: "Verdicts found in a cache layer: local, redis, or singleflight (joined a verification in flight)."}, []string{"layer"})
	m.cacheMisses = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_serve_cache_misses_total",
		Help: "Verdicts not found in a cache layer: local or redis."}, []string{"layer"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_serve_policy_reloads_total",
		Help: "Policy reloads, by result: success (swapped in) or failure (refused; the old policy keeps serving)."}, []string{"result"})
	m.redisErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "keyward_serve_redis_errors_total",
		Help: "Failed Redis commands (the local cache answered alone), by operation: get, set, or invalid (a value that failed validation)."}, []string{"op"})
	for _, l := range []string{layerLocal, layerRedis, layerJoined} {
		m.cacheHits.WithLabelValues(l)
	}
	for _, l := range []string{layerLocal, layerRedis} {
		m.cacheMisses.WithLabelValues(l)
	}
	for _, v := range []string{"verified", "failed", "skipped", "error"} {
		m.verdicts.WithLabelValues(v)
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.reg.MustRegister(m.requests, m.requestDuration, m.verdicts, m.verifyDuration, m.cacheHits, m.cacheMisses,
		m.reloads, m.redisErrors, registryCollector{m},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_serve_cache_entries", Help: "Verdicts kept in the local cache."},
			func() float64 {
				if c := m.watched(); c != nil {
					return float64(c.Len())
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_serve_cache_bytes", Help: "Estimated memory of the verdicts kept in the local cache."},
			func() float64 {
				if c := m.watched(); c != nil {
					return float64(c.Bytes())
				}
				return 0
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keyward_serve_signature_cache_bytes",
			Help: "Envelope bytes of the signatures kept (by digest) for every verification."},
			func() float64 {
				m.mu.Lock()
				sc := m.sigs
				m.mu.Unlock()
				if sc == nil {
					return 0
				}
				_, b := sc.Len()
				return float64(b)
			}),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) watched() *Cache {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cache
}

// Registry is the Prometheus registry of the metrics, to add more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// PolicyReload counts a policy reload: ok when the new policy was swapped
// in, not ok when it was refused.
func (m *Metrics) PolicyReload(ok bool) {
	if m == nil {
		return
	}
	if ok {
		m.reloads.WithLabelValues("success").Inc()
	} else {
		m.reloads.WithLabelValues("failure").Inc()
	}
}

// TrackRemote reports the registry requests of r at every scrape.
func (m *Metrics) TrackRemote(r *oci.Remote) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.remotes = append(m.remotes, r)
	m.mu.Unlock()
}

// UntrackRemote stops watching r (a registry client the server dropped),
// keeping its counts so that the counters never go back.
func (m *Metrics) UntrackRemote(r *oci.Remote) {
	if m == nil {
		return
	}
	stats := r.Stats()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, x := range m.remotes {
		if x == r {
			m.remotes = append(m.remotes[:i], m.remotes[i+1:]...)
			break
		}
	}
	m.retired = append(m.retired, stats...)
	if len(m.retired) > 4*maxRegistryLabels {
		m.retired = foldStats(m.retired)
	}
}

// foldStats sums stats by registry.
func foldStats(stats []oci.RegistryStats) []oci.RegistryStats {
	idx := map[string]int{}
	var out []oci.RegistryStats
	for _, s := range stats {
		i, ok := idx[s.Registry]
		if !ok {
			i = len(out)
			idx[s.Registry] = i
			out = append(out, oci.RegistryStats{Registry: s.Registry})
		}
		out[i].Requests += s.Requests
		out[i].TokenRequests += s.TokenRequests
		out[i].Errors += s.Errors
	}
	return out
}

// WatchCache reports the entries and estimated bytes of c at every
// scrape, instead of the cache watched before.
func (m *Metrics) WatchCache(c *Cache) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.cache = c
	m.mu.Unlock()
}

// WatchSignatures reports the signatures kept in sc at every scrape.
func (m *Metrics) WatchSignatures(sc *oci.SignatureCache) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.sigs = sc
	m.mu.Unlock()
}

func (m *Metrics) request(endpoint string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.requestDuration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// verdictClass is the verdict label of a result.
func verdictClass(r *verify.ReferenceResult) string {
	switch {
	case r.Skipped:
		return "skipped"
	case r.Verified:
		return "verified"
	case r.Error == nil:
		return "failed"
	}
	switch r.Error.Kind {
	case verify.ErrorNoSignature, verify.ErrorVerificationFailed, verify.ErrorLimitExceeded:
		return "failed"
	}
	return "error"
}

func (m *Metrics) verdict(r *verify.ReferenceResult) {
	if m == nil {
		return
	}
	m.verdicts.WithLabelValues(verdictClass(r)).Inc()
}

func (m *Metrics) verification(d time.Duration) {
	if m == nil {
		return
	}
	m.verifyDuration.Observe(d.Seconds())
}

func (m *Metrics) cacheHit(layer string) {
	if m == nil {
		return
	}
	m.cacheHits.WithLabelValues(layer).Inc()
}

func (m *Metrics) cacheMiss(layer string) {
	if m == nil {
		return
	}
	m.cacheMisses.WithLabelValues(layer).Inc()
}

func (m *Metrics) redisError(op string) {
	if m == nil {
		return
	}
	m.redisErrors.WithLabelValues(op).Inc()
}

// registryCollector reports the registry counts of the tracked Remotes,
// summed by registry.
type registryCollector struct{ m *Metrics }

var (
	registryRequestsDesc = prometheus.NewDesc("keyward_serve_registry_requests_total",
		"Requests made to a registry (401 challenges included; a retried request counts once).", []string{"registry"}, nil)
	registryTokenDesc = prometheus.NewDesc("keyward_serve_registry_token_requests_total",
		"Requests made to a registry's token service.", []string{"registry"}, nil)
	registryErrorsDesc = prometheus.NewDesc("keyward_serve_registry_errors_total",
		"Registry and token service requests that failed: no answer (refused, timeout) or 429/5xx.", []string{"registry"}, nil)
)

func (c registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- registryRequestsDesc
	ch <- registryTokenDesc
	ch <- registryErrorsDesc
}

func (c registryCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	remotes := append([]*oci.Remote(nil), c.m.remotes...)
	all := append([]oci.RegistryStats(nil), c.m.retired...)
	c.m.mu.Unlock()
	for _, r := range remotes {
		all = append(all, r.Stats()...)
	}
	sums := map[string]*oci.RegistryStats{}
	var order []string
	for _, s := range all {
		host := s.Registry
		if _, ok := sums[host]; !ok && len(sums) >= maxRegistryLabels {
			host = "other"
		}
		sum, ok := sums[host]
		if !ok {
			sum = &oci.RegistryStats{Registry: host}
			sums[host] = sum
			order = append(order, host)
		}
		sum.Requests += s.Requests
		sum.TokenRequests += s.TokenRequests
		sum.Errors += s.Errors
	}
	for _, host := range order {
		s := sums[host]
		ch <- prometheus.MustNewConstMetric(registryRequestsDesc, prometheus.CounterValue, float64(s.Requests), host)
		ch <- prometheus.MustNewConstMetric(registryTokenDesc, prometheus.CounterValue, float64(s.TokenRequests), host)
		ch <- prometheus.MustNewConstMetric(registryErrorsDesc, prometheus.CounterValue, float64(s.Errors), host)
	}
}

// observe counts the verdict answered for raw, and logs it when it is an
// error (registry unreachable, timeout, internal error): never an allow,
// and worth an operator's look.
func (s *Server) observe(raw string, r *verify.ReferenceResult) {
	if r == nil {
		return
	}
	s.metrics.verdict(r)
	if verdictClass(r) == "error" {
		s.log.Warn("verification error", "reference", raw, "kind", string(r.Error.Kind), "error", r.Error.Message)
	}
}
