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

// minPause is the shortest pause after a 429.
const minPause = 100 * time.Millisecond

// DefaultMaxRateLimitWait is the default budget of time a scan pauses for
// one registry's 429 answers.
const DefaultMaxRateLimitWait = 5 * time.Minute

// PauseTransport pauses every request to a registry that answered 429 Too
// Many Requests until its Retry-After has passed (RFC 9110 10.2.3: seconds
// or an HTTP date; at most MaxRetryAfter; one second when absent), so that
// concurrent workers back off together instead of each meeting the limit.
// It counts the requests it sends. Put it under package oci's retry
// transport (oci.RemoteOptions.Transport), which retries the 429 itself.
//
// The pauses of one registry are bounded in total by MaxWait: once they add
// up to more, every request to it fails at once with a
// [*RateLimitBudgetError] (a registry that answers 429 forever would
// otherwise hold the scan forever, one bounded request after another).
type PauseTransport struct {
	// Base sends the requests.
	Base http.RoundTripper
	// MaxWait bounds the time paused for one registry (the union of its
	// pauses); zero: DefaultMaxRateLimitWait.
	MaxWait time.Duration

	requests, limited atomic.Int64
	mu                sync.Mutex
	until             map[string]time.Time
	paused            map[string]time.Duration
}

// NewPauseTransport returns a PauseTransport over base.
func NewPauseTransport(base http.RoundTripper) *PauseTransport {
	return &PauseTransport{Base: base, until: map[string]time.Time{}, paused: map[string]time.Duration{}}
}

func (p *PauseTransport) maxWait() time.Duration {
	if p.MaxWait <= 0 {
		return DefaultMaxRateLimitWait
	}
	return p.MaxWait
}

// spent returns the error of a host whose budget of pauses is spent.
func (p *PauseTransport) spent(host string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused[host] > p.maxWait() {
		return &RateLimitBudgetError{Host: host, Budget: p.maxWait()}
	}
	return nil
}

// RoundTrip waits out the host's pause, then sends the request.
func (p *PauseTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	host := req.URL.Host
	if err := p.spent(host); err != nil {
		return nil, err
	}
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
		if err := p.spent(host); err != nil {
			return nil, err
		}
	}
	p.requests.Add(1)
	resp, err := p.Base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		p.limited.Add(1)
		// At least minPause: a registry that answers "Retry-After: 0"
		// forever spends its budget too.
		d := max(retryAfter(resp.Header.Get("Retry-After"), time.Now()), minPause)
		now := time.Now()
		p.mu.Lock()
		if t := now.Add(d); t.After(p.until[host]) {
			// The time added to the host's pause counts against its
			// budget; overlapping pauses count once.
			p.paused[host] += t.Sub(later(now, p.until[host]))
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

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
