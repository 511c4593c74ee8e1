package serve

import (
	"container/list"
	"context"
	"sync"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/oci"
)

// maxRemotes bounds the registry clients kept, one per credential set
// (the server's own, and each distinct set of pull secrets used).
const maxRemotes = 256

// remotePool keeps one registry client per credential set, the least
// recently used dropped beyond maxRemotes: clients of different
// credentials never share a token, and a set used again finds its
// connections and tokens.
type remotePool struct {
	ro      oci.RemoteOptions
	make    func(oci.RemoteOptions) *oci.Remote
	dropped func(*oci.Remote)

	mu  sync.Mutex
	m   map[string]*list.Element
	lru *list.List // front: most recently used *pooledRemote
}

type pooledRemote struct {
	key string
	r   *oci.Remote
}

func newRemotePool(ro oci.RemoteOptions, make func(oci.RemoteOptions) *oci.Remote, dropped func(*oci.Remote)) *remotePool {
	return &remotePool{ro: ro, make: make, dropped: dropped, m: map[string]*list.Element{}, lru: list.New()}
}

// get returns the client of the credential set key, made with the
// credential function cred returns when there is none yet.
func (p *remotePool) get(key string, cred func() auth.CredentialFunc) *oci.Remote {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.m[key]; ok {
		p.lru.MoveToFront(e)
		return e.Value.(*pooledRemote).r
	}
	ro := p.ro
	ro.Credential = cred()
	r := p.make(ro)
	p.m[key] = p.lru.PushFront(&pooledRemote{key: key, r: r})
	for p.lru.Len() > maxRemotes {
		old := p.lru.Remove(p.lru.Back()).(*pooledRemote)
		delete(p.m, old.key)
		if p.dropped != nil {
			p.dropped(old.r)
		}
	}
	return r
}

// sourceFor returns the registry client of the credentials of cs (nil:
// the server's own).
func (s *Server) sourceFor(cs *credentialSet) oci.Source {
	key := ""
	if cs != nil {
		key = cs.key
	}
	return s.remotes.get(key, func() auth.CredentialFunc { return s.credential(cs) })
}

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
