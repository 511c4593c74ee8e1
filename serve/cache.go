package serve

import (
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyward/keyward/verify"
)

// Cache keeps verdicts for every request of a server: an LRU of at most
// MaxEntries verdicts and half of MaxBytes (each verdict's estimated
// size), verified ones for TTL and failed ones for FailureTTL, and a single
// flight per key so that concurrent requests for one artifact cost one
// verification. Keys are built by the server from the artifact's digest
// (never a tag), its scope, and the digests of the trust policy and trust
// store, so that a changed policy never reuses a verdict. With a shared
// store (Redis), a miss asks it before verifying, inside the single
// flight, and a new verdict (not an error) is written to it. A Cache is safe for
// concurrent use.
type Cache struct {
	cfg      CacheConfig
	maxBytes int64
	now      func() time.Time
	base     context.Context
	shared   sharedStore // nil: none
	metrics  *Metrics    // nil: none

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     *list.List // front: most recently used *cacheEntry
	bytes   int64

	group         singleflight.Group
	verifications atomic.Int64
}

// sharedStore is a verdict store shared by the replicas of a server:
// lookups and writes never fail, a store that cannot answer is a miss.
type sharedStore interface {
	// get returns the verdict of key and how long it is still valid.
	get(ctx context.Context, key string) (*verify.ReferenceResult, time.Duration, bool)
	// set stores the verdict of key for ttl.
	set(ctx context.Context, key string, r *verify.ReferenceResult, ttl time.Duration)
}

type cacheEntry struct {
	key     string
	result  *verify.ReferenceResult
	expires time.Time
	size    int64
}

// Estimated memory of a verdict kept: entryOverhead for the entry, its
// list element and its map slot, the key, and seven quarters of the
// length of the result's JSON (its strings, plus the structures around
// them). A verified verdict with one signature (3.4 KiB of JSON) takes
// 5.6 KiB of heap when none of its strings is shared with another verdict,
// 2.8 KiB when interned strings are (TestLoad measures both); the estimate
// is the first, so that the byte bound holds whatever is kept.
const entryOverhead = 512

// verdictSize estimates the memory a verdict of key holds in the cache.
func verdictSize(key string, r *verify.ReferenceResult) int64 {
	data, err := json.Marshal(r)
	if err != nil {
		return entryOverhead + int64(len(key)) + 8192
	}
	return entryOverhead + int64(len(key)) + int64(len(data))*7/4
}

// NewCache returns an empty cache. Verifications run under base (the
// server's lifetime), not under the request that started them, so that a
// caller giving up does not fail the others waiting for the same verdict.
func NewCache(base context.Context, cfg CacheConfig) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	return &Cache{cfg: cfg, maxBytes: cfg.MaxBytes / 2, now: time.Now, base: base, entries: map[string]*list.Element{}, lru: list.New()}
}

// Verifications is how many verifications the cache has run (misses that
// were not joined to one in flight nor found in the shared store).
func (c *Cache) Verifications() int64 { return c.verifications.Load() }

// Len is the number of verdicts kept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes is the estimated memory of the verdicts kept.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
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
		c.remove(el)
		return nil, false
	}
	c.lru.MoveToFront(el)
	return e.result, true
}

// remove drops an entry; c.mu is held.
func (c *Cache) remove(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.bytes -= e.size
}

// ttl is how long a verdict is kept.
func (c *Cache) ttl(r *verify.ReferenceResult) time.Duration {
	if r.Verified {
		return c.cfg.TTL
	}
	return c.cfg.FailureTTL
}

// put keeps a verdict for ttl.
func (c *Cache) put(key string, r *verify.ReferenceResult, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	size := verdictSize(key, r)
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	c.entries[key] = c.lru.PushFront(&cacheEntry{key: key, result: r, expires: c.now().Add(ttl), size: size})
	c.bytes += size
	for c.lru.Len() > c.cfg.MaxEntries || c.bytes > c.maxBytes {
		c.remove(c.lru.Back())
	}
}

// Do returns the verdict of key: the cached one, the one being computed by
// another caller, the shared store's, or fn's, run once under the cache's
// base context bounded by timeout. When ctx ends first, the answer is a
// failure built by failed: a verdict is never assumed. A panic in fn is a
// failure too. The result returned is shared: callers copy it before
// changing it.
func (c *Cache) Do(ctx context.Context, key string, timeout time.Duration, fn func(context.Context) *verify.ReferenceResult, failed func(error) *verify.ReferenceResult) *verify.ReferenceResult {
	if r, ok := c.get(key); ok {
		c.metrics.cacheHit(layerLocal)
		return r
	}
	c.metrics.cacheMiss(layerLocal)
	leader := false
	ch := c.group.DoChan(key, func() (any, error) {
		leader = true
		if r, ok := c.get(key); ok {
			return r, nil
		}
		if c.shared != nil {
			if r, left, ok := c.shared.get(c.base, key); ok {
				c.metrics.cacheHit(layerRedis)
				// Kept no longer than the shared store keeps it, so that
				// a verdict never outlives the TTL it was computed with.
				c.put(key, compact(r), min(left, c.ttl(r)))
				return r, nil
			}
			c.metrics.cacheMiss(layerRedis)
		}
		c.verifications.Add(1)
		start := time.Now()
		r := c.run(timeout, fn, failed)
		c.metrics.verification(time.Since(start))
		ttl := c.ttl(r)
		c.put(key, compact(r), ttl)
		// An error (registry unreachable, timeout) is this replica's view:
		// the others try for themselves. Verdicts are shared.
		if c.shared != nil && ttl > 0 && verdictClass(r) != "error" {
			c.shared.set(c.base, key, r, ttl)
		}
		return r, nil
	})
	select {
	case res := <-ch:
		if !leader {
			c.metrics.cacheHit(layerJoined)
		}
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
