package serve

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward/verify"
)

func failedResult(err error) *verify.ReferenceResult {
	return &verify.ReferenceResult{Error: &verify.ReferenceError{Kind: verify.ErrorRetrievalFailed, Message: err.Error()}}
}

// TestCacheTTLAndEviction checks the verified and failure TTLs and the LRU
// bound with a fake clock.
func TestCacheTTLAndEviction(t *testing.T) {
	now := time.Unix(1000, 0)
	c := NewCache(context.Background(), CacheConfig{TTL: time.Minute, FailureTTL: time.Second, MaxEntries: 2})
	c.now = func() time.Time { return now }
	runs := map[string]int{}
	get := func(key string, verified bool) *verify.ReferenceResult {
		return c.Do(context.Background(), key, time.Second, func(context.Context) *verify.ReferenceResult {
			runs[key]++
			return &verify.ReferenceResult{Verified: verified}
		}, failedResult)
	}
	get("ok", true)
	get("bad", false)
	get("ok", true)
	get("bad", false)
	if runs["ok"] != 1 || runs["bad"] != 1 {
		t.Fatalf("runs %v, want one each", runs)
	}
	now = now.Add(2 * time.Second) // past the failure TTL only
	get("ok", true)
	get("bad", false)
	if runs["ok"] != 1 || runs["bad"] != 2 {
		t.Errorf("after 2s: runs %v, want ok 1, bad 2", runs)
	}
	get("third", true) // evicts the least recently used: ok
	if c.Len() != 2 {
		t.Errorf("len %d, want 2", c.Len())
	}
	get("ok", true)
	if runs["ok"] != 2 {
		t.Errorf("evicted entry served: runs %v", runs)
	}
	if c.Verifications() != 5 {
		t.Errorf("verifications %d, want 5", c.Verifications())
	}
}

// TestCacheFailsClosed checks that a panic, a nil result and a caller's
// deadline all give a failure, never a verdict.
func TestCacheFailsClosed(t *testing.T) {
	c := NewCache(context.Background(), CacheConfig{TTL: time.Minute, MaxEntries: 10})
	r := c.Do(context.Background(), "panic", time.Second, func(context.Context) *verify.ReferenceResult { panic("boom") }, failedResult)
	if r.Verified || r.Error == nil {
		t.Errorf("panic: %+v", r)
	}
	r = c.Do(context.Background(), "nil", time.Second, func(context.Context) *verify.ReferenceResult { return nil }, failedResult)
	if r.Verified || r.Error == nil {
		t.Errorf("nil: %+v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	release := make(chan struct{})
	defer close(release)
	r = c.Do(ctx, "slow", time.Minute, func(context.Context) *verify.ReferenceResult {
		<-release
		return &verify.ReferenceResult{Verified: true}
	}, failedResult)
	if r.Verified || r.Error == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("deadline: %+v", r)
	}
	// The verification's own timeout reaches fn.
	r = c.Do(context.Background(), "timeout", 20*time.Millisecond, func(ctx context.Context) *verify.ReferenceResult {
		<-ctx.Done()
		return failedResult(ctx.Err())
	}, failedResult)
	if r.Verified {
		t.Errorf("timeout: %+v", r)
	}
}
