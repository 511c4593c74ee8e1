package oci

import (
	"container/list"
	"context"
	"sync"
)

// Bounds on the envelopes a [Remote] holds (SECURITY.md): what it keeps to
// serve again, and what it holds at once while signatures are judged.
const (
	// DefaultCacheBytes bounds the signatures a Remote keeps for the rest
	// of a run (envelope bytes).
	DefaultCacheBytes = 16 << 20
	// maxCachedEnvelope is the largest envelope kept for the rest of a
	// run; real notation envelopes are a few KiB. Larger ones are read for
	// the signature that needs them and dropped once judged.
	maxCachedEnvelope = 1 << 20
	// DefaultMaxInFlightBytes bounds the envelope bytes of a Remote being
	// read or judged at the same time, all references together.
	DefaultMaxInFlightBytes = 256 << 20
)

// SignatureCache keeps fetched signatures with small envelopes (at most
// 1 MiB each), least recently used first out, within a byte budget of
// envelope bytes. One may be shared by several Remotes
// (RemoteOptions.Signatures); it is safe for concurrent use.
type SignatureCache struct{ c *sigCache }

// NewSignatureCache returns an empty cache of at most maxBytes envelope
// bytes (DefaultCacheBytes when maxBytes <= 0).
func NewSignatureCache(maxBytes int64) *SignatureCache {
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return &SignatureCache{c: newSigCache(maxBytes)}
}

// Len returns the number of signatures kept and their envelope bytes.
func (c *SignatureCache) Len() (n int, bytes int64) { return c.c.len() }

// sigCache keeps signatures with small envelopes, least recently used
// first out, within a byte budget.
type sigCache struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	order *list.List // of *sigEntry, most recent at the front
	byKey map[string]*list.Element
}

type sigEntry struct {
	key string
	sig *Signature
}

func newSigCache(max int64) *sigCache {
	return &sigCache{max: max, order: list.New(), byKey: map[string]*list.Element{}}
}

func (c *sigCache) get(key string) (*Signature, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byKey[key]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*sigEntry).sig, true
	}
	return nil, false
}

func (c *sigCache) put(key string, sig *Signature) {
	size := int64(len(sig.Envelope))
	if size > maxCachedEnvelope || size > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[key]; ok {
		return
	}
	c.byKey[key] = c.order.PushFront(&sigEntry{key: key, sig: sig})
	c.bytes += size
	for c.bytes > c.max {
		last := c.order.Back()
		e := last.Value.(*sigEntry)
		c.order.Remove(last)
		delete(c.byKey, e.key)
		c.bytes -= int64(len(e.sig.Envelope))
	}
}

// len returns the number of signatures kept and their envelope bytes.
func (c *sigCache) len() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes
}

// byteSem is a weighted semaphore of bytes.
type byteSem struct {
	mu      sync.Mutex
	max     int64
	used    int64
	waiters list.List // of chan struct{}, woken in turn
}

// acquire waits until n bytes fit, or ctx ends. A request larger than the
// whole budget waits for everything else and then runs alone.
func (s *byteSem) acquire(ctx context.Context, n int64) error {
	n = min(n, s.max)
	for {
		s.mu.Lock()
		if s.used+n <= s.max {
			s.used += n
			s.mu.Unlock()
			return nil
		}
		ch := make(chan struct{})
		e := s.waiters.PushBack(ch)
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.mu.Lock()
			s.waiters.Remove(e)
			s.mu.Unlock()
			return ctx.Err()
		}
	}
}

func (s *byteSem) release(n int64) {
	n = min(n, s.max)
	s.mu.Lock()
	s.used -= n
	for e := s.waiters.Front(); e != nil; e = s.waiters.Front() {
		close(s.waiters.Remove(e).(chan struct{}))
	}
	s.mu.Unlock()
}
