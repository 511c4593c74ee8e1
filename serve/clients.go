package serve

import (
	"context"

	"github.com/keyward/keyward/oci"
)

// newRemote makes a registry client that lives as long as the server: one
// per credential set, shared by every verification, so that connections,
// registry tokens, referrers capabilities and signatures are reused across
// requests. Tag resolutions are kept for cache.resolutionTTL (a failure
// not at all), a token service's refusal of the credentials for the
// failure TTL, and signatures (immutable, by digest) in the server's one
// byte-bounded signature cache. Its registry requests are counted in the
// metrics.
func (s *Server) newRemote(ro oci.RemoteOptions) *oci.Remote {
	ro.ResolutionTTL = s.cfg.Cache.ResolutionTTL
	if ro.ResolutionTTL <= 0 {
		// Resolved on every request; concurrent requests still share
		// one resolution in flight.
		ro.ResolutionTTL = 1
	}
	ro.RefusalTTL = max(s.cfg.Cache.FailureTTL, 1)
	ro.Signatures = s.sigs
	if ro.Transport == nil {
		// Built here (as NewRemote would) to close its idle connections
		// when the server stops.
		tr := oci.NewTransport(ro)
		ro.Transport = tr
		if c, ok := tr.(interface{ CloseIdleConnections() }); ok {
			s.idleMu.Lock()
			s.idle = append(s.idle, c)
			s.idleMu.Unlock()
		}
	}
	r := oci.NewRemote(ro)
	s.metrics.TrackRemote(r)
	return r
}

// newCache makes the verdict cache, over the shared store when one is
// configured, reported in the metrics.
func (s *Server) newCache(base context.Context) *Cache {
	c := NewCache(base, s.cfg.Cache)
	if s.redis != nil {
		c.shared = s.redis
	}
	c.metrics = s.metrics
	s.metrics.WatchCache(c)
	return c
}

// Metrics returns the server's metrics, for the parts of the server built
// elsewhere (a policy reload counts itself with Metrics().PolicyReload).
func (s *Server) Metrics() *Metrics { return s.metrics }

// closeIdleConnections closes the idle registry connections of the
// server's Remotes (a stopped server keeps none; tests count goroutines).
func (s *Server) closeIdleConnections() {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	for _, c := range s.idle {
		c.CloseIdleConnections()
	}
}
