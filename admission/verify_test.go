package admission

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/verify"
)

// verifierFunc adapts a function to Verifier, for the scheduling tests
// below; verdicts themselves are tested against real registries in
// package serve.
type verifierFunc func(context.Context, ImageRequest) *verify.ReferenceResult

func (f verifierFunc) VerifyImage(ctx context.Context, r ImageRequest) *verify.ReferenceResult {
	return f(ctx, r)
}

// TestVerifyAllSchedules checks that each distinct (namespace, reference)
// is verified once, at most concurrency at a time.
func TestVerifyAllSchedules(t *testing.T) {
	var calls, running, peak atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	v := verifierFunc(func(_ context.Context, r ImageRequest) *verify.ReferenceResult {
		calls.Add(1)
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
		mu.Lock()
		seen[requestKey(r.Namespace, r.Reference)]++
		mu.Unlock()
		return &verify.ReferenceResult{Reference: r.Reference, Verified: true}
	})
	var reqs []ImageRequest
	for i := range 40 {
		reqs = append(reqs, ImageRequest{Reference: string(rune('a' + i%10))}, ImageRequest{Namespace: "other", Reference: "a"})
	}
	out := verifyAll(context.Background(), v, reqs, 3)
	if len(out) != 11 || calls.Load() != 11 {
		t.Errorf("%d results, %d calls; want 11 each", len(out), calls.Load())
	}
	if p := peak.Load(); p > 3 {
		t.Errorf("%d verifications at once, more than 3", p)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%q verified %d times", k, n)
		}
	}
}

// TestVerifyAllFailsClosed checks that a verification that does not end
// by the deadline, panics, or returns nil is a failure, and that the
// answer comes at the deadline.
func TestVerifyAllFailsClosed(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	v := verifierFunc(func(ctx context.Context, r ImageRequest) *verify.ReferenceResult {
		switch r.Reference {
		case "stuck":
			<-release // ignores its context
		case "panics":
			panic("boom")
		case "nil":
			return nil
		}
		return &verify.ReferenceResult{Reference: r.Reference, Verified: true}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out := verifyAll(ctx, v, []ImageRequest{{Reference: "stuck"}, {Reference: "panics"}, {Reference: "nil"}, {Reference: "fine"}}, 2)
	if took := time.Since(start); took > time.Second {
		t.Errorf("answered after %v", took)
	}
	for ref, want := range map[string]string{"stuck": "did not finish in time", "panics": "internal error: boom", "nil": "no result"} {
		r := out[requestKey("", ref)]
		if r == nil || r.Verified || r.Error == nil || !strings.Contains(r.Error.Message, want) || r.Reference != ref {
			t.Errorf("%s: %+v", ref, r)
		}
		if Failure(r) == "" {
			t.Errorf("%s: no failure text", ref)
		}
	}
	if r := out[requestKey("", "fine")]; r == nil || !r.Verified || Failure(r) != "" {
		t.Errorf("fine: %+v", r)
	}
}
