package serve

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
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
// store, so that a changed policy never reuses a verdict. A verdict is kept
// as a compact record (verdictcodec.go) whose strings are shared with the
// other records, and decoded into new objects on every hit. With a shared
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
	entries map[[sha256.Size]byte]*list.Element
	lru     *list.List   // front: most recently used *cacheEntry
	strings *stringTable // the records' strings
	bytes   int64        // estimated memory of the entries, without their strings

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

// cacheEntry is a verdict kept: the SHA-256 of its cache key (keys are a
// few hundred bytes; their hash tells them apart as surely as the Redis
// store's keys do), its record, and when it expires (Unix nanoseconds).
type cacheEntry struct {
	key     [sha256.Size]byte
	record  string // uvarint n, the n string table indexes of its slots, the body
	expires int64
	size    int64
}

// Estimated memory of a verdict kept, without the strings it shares with
// the other verdicts (the string table counts those, tableStringSize
// each): entryOverhead for its list element (48 bytes), its entry (64),
// its slot in the map (up to 96 while the map grows), plus its
// record and the rounding of the record to an allocation size class (an
// eighth at most). A verified verdict with one signature (3.4 KiB of JSON,
// 3 KiB of heap as objects) is a record of about 140 bytes; with its
// strings, checks and chain shared, as those of one signer's verdicts are,
// it takes about 320 bytes of heap and is estimated at about 410. TestLoad
// measures that, and a verdict whose every string is its own, against the
// estimate.
const entryOverhead = 256

// verdictSize estimates the memory a verdict of record bytes holds in the
// cache, without its strings.
func verdictSize(record int) int64 {
	return entryOverhead + int64(record)*9/8
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
	return &Cache{cfg: cfg, maxBytes: cfg.MaxBytes / 2, now: time.Now, base: base,
		entries: map[[sha256.Size]byte]*list.Element{}, lru: list.New(), strings: newStringTable()}
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

// Bytes is the estimated memory of the verdicts kept, their strings
// included.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes + c.strings.bytes
}

// get returns a new copy of the verdict of key.
func (c *Cache) get(key string) (*verify.ReferenceResult, bool) {
	h := sha256.Sum256([]byte(key))
	c.mu.Lock()
	el, ok := c.entries[h]
	if !ok {
		c.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	if c.now().UnixNano() >= e.expires {
		c.remove(el)
		c.mu.Unlock()
		return nil, false
	}
	c.lru.MoveToFront(el)
	// The slots' strings are read under the lock (a string no record
	// uses is dropped, its index reused); the body is decoded after.
	body, slots, err := c.slots(e.record)
	c.mu.Unlock()
	var r *verify.ReferenceResult
	if err == nil {
		r, err = decodeVerdict(body, slots)
	}
	if err != nil {
		// Never: a record is what encodeVerdict wrote. A miss.
		c.mu.Lock()
		if cur, ok := c.entries[h]; ok && cur == el {
			c.remove(el)
		}
		c.mu.Unlock()
		return nil, false
	}
	return r, true
}

// slots returns the body of a record and the strings of its slots; c.mu
// is held.
func (c *Cache) slots(record string) (string, []string, error) {
	n, k := uvarint(record)
	if k <= 0 || n > uint64(len(record)) {
		return "", nil, errRecord
	}
	record = record[k:]
	slots := make([]string, n)
	for i := range slots {
		idx, k := uvarint(record)
		if k <= 0 {
			return "", nil, errRecord
		}
		record = record[k:]
		s, ok := c.strings.get(uint32(idx))
		if !ok || idx > math.MaxUint32 {
			return "", nil, errRecord
		}
		slots[i] = s
	}
	return record, slots, nil
}

// release counts the strings of a record one use less; c.mu is held.
func (c *Cache) release(record string) {
	n, k := uvarint(record)
	if k <= 0 {
		return
	}
	record = record[k:]
	for range n {
		idx, k := uvarint(record)
		if k <= 0 || idx > math.MaxUint32 {
			return
		}
		record = record[k:]
		c.strings.release(uint32(idx))
	}
}

// remove drops an entry; c.mu is held.
func (c *Cache) remove(el *list.Element) {
	e := el.Value.(*cacheEntry)
	c.lru.Remove(el)
	delete(c.entries, e.key)
	c.bytes -= e.size
	c.release(e.record)
}

// ttl is how long a verdict is kept.
func (c *Cache) ttl(r *verify.ReferenceResult) time.Duration {
	if r.Verified {
		return c.cfg.TTL
	}
	return c.cfg.FailureTTL
}

// put keeps a verdict for ttl (an encoding of it: r is only read).
func (c *Cache) put(key string, r *verify.ReferenceResult, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	body, slots := encodeVerdict(r)
	// What the verdict takes alone, its strings counted as its own: one
	// that cannot fit in the bound is not kept.
	alone := verdictSize(len(body) + len(slots)*binary.MaxVarintLen32 + binary.MaxVarintLen64)
	for _, s := range slots {
		alone += tableStringSize(s)
	}
	if alone > c.maxBytes {
		return
	}
	h := sha256.Sum256([]byte(key))
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[h]; ok {
		c.remove(el)
	}
	prefix := make([]byte, 0, binary.MaxVarintLen64+len(slots)*binary.MaxVarintLen32)
	prefix = binary.AppendUvarint(prefix, uint64(len(slots)))
	for _, s := range slots {
		prefix = binary.AppendUvarint(prefix, uint64(c.strings.acquire(s)))
	}
	// One allocation of the record's own length: it is kept for the TTL.
	var b strings.Builder
	b.Grow(len(prefix) + len(body))
	b.Write(prefix)
	b.Write(body)
	record := b.String()
	e := &cacheEntry{key: h, record: record, expires: c.now().Add(ttl).UnixNano(), size: verdictSize(len(record))}
	c.entries[h] = c.lru.PushFront(e)
	c.bytes += e.size
	for c.lru.Len() > 0 && (c.lru.Len() > c.cfg.MaxEntries || c.bytes+c.strings.bytes > c.maxBytes) {
		c.remove(c.lru.Back())
	}
}

// Do returns the verdict of key: the cached one, the one being computed by
// another caller, the shared store's, or fn's, run once under the cache's
// base context bounded by timeout. When ctx ends first, the answer is a
// failure built by failed: a verdict is never assumed. A panic in fn is a
// failure too. The result returned may be shared (a verdict computed for
// several callers at once): callers copy it before changing it.
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
				c.put(key, r, min(left, c.ttl(r)))
				return r, nil
			}
			c.metrics.cacheMiss(layerRedis)
		}
		c.verifications.Add(1)
		start := time.Now()
		r := c.run(timeout, fn, failed)
		c.metrics.verification(time.Since(start))
		ttl := c.ttl(r)
		c.put(key, r, ttl)
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
