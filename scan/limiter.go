package scan

import (
	"context"
	"sync"
)

// limiter bounds the work in flight in total and per registry.
type limiter struct {
	total   chan struct{}
	perHost int

	mu    sync.Mutex
	hosts map[string]chan struct{}
}

func newLimiter(total, perHost int) *limiter {
	return &limiter{total: make(chan struct{}, total), perHost: perHost, hosts: map[string]chan struct{}{}}
}

// acquire takes a slot of host and one of the total, in that order (every
// caller takes them in the same order and holds no other), and returns
// their release.
func (l *limiter) acquire(ctx context.Context, host string) (func(), error) {
	l.mu.Lock()
	h, ok := l.hosts[host]
	if !ok {
		h = make(chan struct{}, l.perHost)
		l.hosts[host] = h
	}
	l.mu.Unlock()
	select {
	case h <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case l.total <- struct{}{}:
	case <-ctx.Done():
		<-h
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-l.total
			<-h
		})
	}, nil
}
