// Package interrupt turns SIGINT and SIGTERM into a cancelled context, and
// guarantees that the process ends promptly even when the work under way
// does not look at that context (a blocking read of a pipe, a CPU-bound
// parse, a call into a C library).
//
// The first signal cancels the context. If the work has not returned within
// the grace period, or a second signal arrives, the exit function runs: it
// writes whatever final word the program owes (the plugin protocol's JSON
// error) and ends the process with the status [Status] gives. Both keyward
// binaries use it, so that a supervisor's TERM (systemd, Kubernetes, timeout)
// and a user's Ctrl-C are honoured within seconds.
package interrupt

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// DefaultGrace is how long the work may run after the first signal before
// the process ends without it: long enough to finish writing a result that
// is almost done, short enough for supervisors, whose default kill timeout
// is 10 s (systemd's is 90 s, Kubernetes' 30 s).
const DefaultGrace = 2 * time.Second

// Status returns the exit status of a process that stops because of sig, as
// shells report a process killed by it: 128 plus the signal number, so 130
// for SIGINT and 143 for SIGTERM.
func Status(sig os.Signal) int {
	if s, ok := sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 1
}

// Name returns the conventional name of sig, "SIGINT" or "SIGTERM", for
// messages.
func Name(sig os.Signal) string {
	switch sig {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// Handler is the signal handling of one run of a program.
type Handler struct {
	ctx    context.Context
	cancel context.CancelFunc
	ch     chan os.Signal
	done   chan struct{}
	stop   sync.Once

	mu  sync.Mutex
	sig os.Signal // the first signal received, or nil
}

// Notify starts handling SIGINT and SIGTERM. The first cancels the returned
// handler's context. exit is called, from another goroutine, with the first
// signal when the work has not called Stop within grace of it, or at once
// when a second signal arrives; exit must end the process (os.Exit). Call
// Stop when the work returns.
func Notify(parent context.Context, grace time.Duration, exit func(first os.Signal)) *Handler {
	ctx, cancel := context.WithCancel(parent)
	h := &Handler{ctx: ctx, cancel: cancel, ch: make(chan os.Signal, 2), done: make(chan struct{})}
	signal.Notify(h.ch, os.Interrupt, syscall.SIGTERM)
	go h.watch(grace, exit)
	return h
}

func (h *Handler) watch(grace time.Duration, exit func(os.Signal)) {
	var first os.Signal
	select {
	case first = <-h.ch:
	case <-h.done:
		return
	}
	h.mu.Lock()
	h.sig = first
	h.mu.Unlock()
	h.cancel()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-h.ch:
	case <-timer.C:
	case <-h.done:
		return
	}
	exit(first)
}

// Context returns the context the first signal cancels.
func (h *Handler) Context() context.Context { return h.ctx }

// Signal returns the first signal received, or nil when none was.
func (h *Handler) Signal() os.Signal {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sig
}

// Stop ends the handling: signals get their default action again, and exit
// will not be called. The context is cancelled.
func (h *Handler) Stop() {
	h.stop.Do(func() {
		signal.Stop(h.ch)
		close(h.done)
		h.cancel()
	})
}
