package scan

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// MaxRetryAfter bounds the pause a registry's Retry-After imposes.
const MaxRetryAfter = 60 * time.Second

// defaultRetryAfter is the pause after a 429 without Retry-After.
const defaultRetryAfter = time.Second

// PauseTransport pauses every request to a registry that answered 429 Too
// Many Requests until its Retry-After has passed (RFC 9110 10.2.3: seconds
// or an HTTP date; at most MaxRetryAfter; one second when absent), so that
// concurrent workers back off together instead of each meeting the limit.
// It counts the requests it sends. Put it under package oci's retry
// transport (oci.RemoteOptions.Transport), which retries the 429 itself.
type PauseTransport struct {
	// Base sends the requests.
	Base http.RoundTripper

	requests, limited atomic.Int64
	mu                sync.Mutex
	until             map[string]time.Time
}

// NewPauseTransport returns a PauseTransport over base.
func NewPauseTransport(base http.RoundTripper) *PauseTransport {
	return &PauseTransport{Base: base, until: map[string]time.Time{}}
}

// RoundTrip waits out the host's pause, then sends the request.
func (p *PauseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	p.mu.Lock()
	until := p.until[host]
	p.mu.Unlock()
	wait := time.Until(until)
	if deadline, ok := req.Context().Deadline(); ok {
		// The pause counts against the request's own timeout: a pause
		// longer than it ends a second early, the request goes out and
		// meets the limit again, and the retry transport above (with a
		// timeout of its own) tries again after its backoff.
		wait = min(wait, time.Until(deadline)-time.Second)
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		}
	}
	p.requests.Add(1)
	resp, err := p.Base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		p.limited.Add(1)
		d := retryAfter(resp.Header.Get("Retry-After"), time.Now())
		p.mu.Lock()
		if t := time.Now().Add(d); t.After(p.until[host]) {
			p.until[host] = t
		}
		p.mu.Unlock()
	}
	return resp, err
}

// Requests returns the requests sent and the 429 answers received.
func (p *PauseTransport) Requests() (sent, limited int64) {
	return p.requests.Load(), p.limited.Load()
}

// retryAfter reads a Retry-After value, bounded.
func retryAfter(v string, now time.Time) time.Duration {
	d := defaultRetryAfter
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
		d = time.Duration(min(n, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}
