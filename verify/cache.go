package verify

import (
	"context"
	"sync"
)

// cache keeps computed values per key for the life of a Verifier. Concurrent
// callers asking for the same key wait for one computation. A computation
// that says not to keep its value (its context ended) is handed to the
// caller that ran it only; callers waiting for it compute again. The number
// of entries is bounded: when full, finished entries are dropped.
type cache[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	m   map[K]*cacheEntry[V]
}

type cacheEntry[V any] struct {
	done chan struct{}
	val  V
	kept bool
}

func newCache[K comparable, V any](max int) *cache[K, V] {
	return &cache[K, V]{max: max, m: make(map[K]*cacheEntry[V])}
}

// get returns the value of key, computing it with compute when no caller
// has. compute returns the value and whether to keep it.
func (c *cache[K, V]) get(ctx context.Context, key K, compute func() (V, bool)) V {
	for {
		c.mu.Lock()
		e, found := c.m[key]
		if !found {
			c.evictLocked()
			e = &cacheEntry[V]{done: make(chan struct{})}
			c.m[key] = e
			c.mu.Unlock()
			return c.fill(key, e, compute)
		}
		c.mu.Unlock()
		select {
		case <-e.done:
			if e.kept {
				return e.val
			}
			// The caller that computed it gave up; compute again.
		case <-ctx.Done():
			v, _ := compute() // fails fast: the context has ended
			return v
		}
	}
}

// fill runs compute for e. If compute panics, the entry is dropped and
// waiters compute again, so nothing waits forever.
func (c *cache[K, V]) fill(key K, e *cacheEntry[V], compute func() (V, bool)) V {
	defer func() {
		if !e.kept {
			c.mu.Lock()
			if c.m[key] == e {
				delete(c.m, key)
			}
			c.mu.Unlock()
		}
		close(e.done)
	}()
	v, keep := compute()
	e.val, e.kept = v, keep
	return v
}

// evictLocked drops finished entries when the cache is full. Entries being
// computed stay, so a cache may briefly exceed max under heavy concurrency.
func (c *cache[K, V]) evictLocked() {
	if len(c.m) < c.max {
		return
	}
	for k, e := range c.m {
		select {
		case <-e.done:
			delete(c.m, k)
		default:
		}
		if len(c.m) < c.max/2 {
			return
		}
	}
}

// forget drops a finished entry, so that the next get computes it again.
func (c *cache[K, V]) forget(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok {
		select {
		case <-e.done:
			delete(c.m, key)
		default:
		}
	}
}

// len returns the number of entries (for tests).
func (c *cache[K, V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
