package serve

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyward/keyward/verify"
)

// Cache keeps verdicts for every request of a server: an LRU of at most
// MaxEntries verdicts, verified ones for TTL and failed ones for
// FailureTTL, and a single flight per key so that concurrent requests for
// one artifact cost one verification. Keys are built by the server from
// the artifact's digest (never a tag), its scope, and the digests of the
// trust policy and trust store, so that a changed policy never reuses a
// verdict. A Cache is safe for concurrent use.
type Cache struct {
	cfg  CacheConfig
	now  func() time.Time
	base context.Context

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     *list.List // front: most recently used *cacheEntry

	group         singleflight.Group
	verifications atomic.Int64
}

type cacheEntry struct {
	key     string
	result  *verify.ReferenceResult
	expires time.Time
}

// NewCache returns an empty cache. Verifications run under base (the
// server's lifetime), not under the request that started them, so that a
// caller giving up does not fail the others waiting for the same verdict.
func NewCache(base context.Context, cfg CacheConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	return &Cache{cfg: cfg, now: time.Now, base: base, entries: map[string]*list.Element{}, lru: list.New()}
}

// Verifications is how many verifications the cache has run (misses that
// were not joined to one in flight).
func (c *Cache) Verifications() int64 { return c.verifications.Load() }

// Len is the number of verdicts kept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

func (c *Cache) get(key string) (*verify.ReferenceResult, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if !c.now().Before(e.expires) {
		c.lru.Remove(el)
		delete(c.entries, key)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.result, true
}

func (c *Cache) put(key string, r *verify.ReferenceResult) {
	ttl := c.cfg.TTL
	if !r.Verified {
		ttl = c.cfg.FailureTTL
	}
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{key: key, result: r, expires: c.now().Add(ttl)}
	if el, ok := c.entries[key]; ok {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.entries[key] = c.lru.PushFront(e)
	for c.lru.Len() > c.cfg.MaxEntries {
		last := c.lru.Back()
		c.lru.Remove(last)
		delete(c.entries, last.Value.(*cacheEntry).key)
	}
}

// Do returns the verdict of key: the cached one, the one being computed by
// another caller, or fn's, run once under the cache's base context bounded
// by timeout. When ctx ends first, the answer is a failure built by
// failed: a verdict is never assumed. A panic in fn is a failure too. The
// result returned is shared: callers copy it before changing it.
func (c *Cache) Do(ctx context.Context, key string, timeout time.Duration, fn func(context.Context) *verify.ReferenceResult, failed func(error) *verify.ReferenceResult) *verify.ReferenceResult {
	if r, ok := c.get(key); ok {
		return r
	}
	ch := c.group.DoChan(key, func() (any, error) {
		if r, ok := c.get(key); ok {
			return r, nil
		}
		c.verifications.Add(1)
		r := c.run(timeout, fn, failed)
		c.put(key, r)
		return r, nil
	})
	select {
	case res := <-ch:
		return res.Val.(*verify.ReferenceResult)
	case <-ctx.Done():
		return failed(fmt.Errorf("keyward serve: no verdict before the request's deadline: %w", context.Cause(ctx)))
	}
}

func (c *Cache) run(timeout time.Duration, fn func(context.Context) *verify.ReferenceResult, failed func(error) *verify.ReferenceResult) (r *verify.ReferenceResult) {
	ctx, cancel := context.WithTimeout(c.base, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			r = failed(fmt.Errorf("keyward serve: internal error during verification: %v", p))
		}
	}()
	r = fn(ctx)
	if r == nil {
		r = failed(fmt.Errorf("keyward serve: internal error: no verification result"))
	}
	return r
}
