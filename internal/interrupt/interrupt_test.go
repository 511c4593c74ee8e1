//go:build unix

package interrupt

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// kill sends sig to this test process, whose handler catches it.
func kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), sig); err != nil {
		t.Fatal(err)
	}
}

func TestStatus(t *testing.T) {
	if got := Status(os.Interrupt); got != 130 {
		t.Errorf("Status(SIGINT) = %d, want 130", got)
	}
	if got := Status(syscall.SIGTERM); got != 143 {
		t.Errorf("Status(SIGTERM) = %d, want 143", got)
	}
	if Name(os.Interrupt) != "SIGINT" || Name(syscall.SIGTERM) != "SIGTERM" {
		t.Errorf("Name = %s, %s", Name(os.Interrupt), Name(syscall.SIGTERM))
	}
}

// TestFirstSignalCancelsThenGraceExits: the first signal cancels the
// context at once; the exit function runs when the grace period ends.
func TestFirstSignalCancelsThenGraceExits(t *testing.T) {
	exited := make(chan os.Signal, 1)
	const grace = 300 * time.Millisecond
	h := Notify(context.Background(), grace, func(s os.Signal) { exited <- s })
	defer h.Stop()
	if h.Signal() != nil || h.Context().Err() != nil {
		t.Fatal("the handler starts interrupted")
	}
	start := time.Now()
	kill(t, syscall.SIGTERM)
	select {
	case <-h.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGTERM did not cancel the context")
	}
	if h.Signal() != syscall.SIGTERM {
		t.Errorf("Signal() = %v, want SIGTERM", h.Signal())
	}
	select {
	case s := <-exited:
		if s != syscall.SIGTERM {
			t.Errorf("exit(%v), want SIGTERM", s)
		}
		if d := time.Since(start); d < grace {
			t.Errorf("exit after %v, before the %v grace period", d, grace)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit was not called after the grace period")
	}
}

// TestSecondSignalExitsAtOnce: a second signal does not wait for the grace
// period; the status is the first signal's.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	exited := make(chan os.Signal, 1)
	h := Notify(context.Background(), time.Hour, func(s os.Signal) { exited <- s })
	defer h.Stop()
	kill(t, syscall.SIGINT)
	<-h.Context().Done()
	kill(t, syscall.SIGTERM)
	select {
	case s := <-exited:
		if s != os.Interrupt {
			t.Errorf("exit(%v), want the first signal, SIGINT", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not call exit")
	}
}

// TestStopPreventsExit: work that returns within the grace period ends the
// program itself; exit is not called.
func TestStopPreventsExit(t *testing.T) {
	exited := make(chan os.Signal, 1)
	h := Notify(context.Background(), 200*time.Millisecond, func(s os.Signal) { exited <- s })
	kill(t, syscall.SIGINT)
	<-h.Context().Done()
	h.Stop()
	select {
	case s := <-exited:
		t.Fatalf("exit(%v) called after Stop", s)
	case <-time.After(600 * time.Millisecond):
	}
	if h.Signal() != os.Interrupt {
		t.Errorf("Signal() = %v after Stop, want SIGINT", h.Signal())
	}
}
