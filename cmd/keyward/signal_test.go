//go:build unix

package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/interrupt"
	"github.com/keyward/keyward/internal/testenv"
)

// blockedRun is the keyward binary started on work that does not end by
// itself.
type blockedRun struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{}
}

// startKeyward starts the binary with a standard input that never closes
// (a pipe whose write end the test keeps) and args.
func startKeyward(t *testing.T, args ...string) *blockedRun {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	b := &blockedRun{cmd: exec.Command(testenv.KeywardBinary(t), args...), done: make(chan struct{})}
	b.cmd.Stdin = r
	b.cmd.Stderr = &b.stderr
	b.cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_CONFIG_HOME="+t.TempDir())
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
	return b
}

// signal sends sigs, gap apart, and returns the exit status and the time
// from the first signal to the exit; the process must exit within limit.
func (b *blockedRun) signal(t *testing.T, limit, gap time.Duration, sigs ...syscall.Signal) (int, time.Duration) {
	t.Helper()
	select {
	case <-b.done:
		t.Fatalf("keyward ended before it was signalled: %s\nstderr: %s", b.cmd.ProcessState, b.stderr.String())
	default:
	}
	start := time.Now()
	for i, s := range sigs {
		if i > 0 {
			time.Sleep(gap)
		}
		if err := b.cmd.Process.Signal(s); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-b.done:
	case <-time.After(limit):
		t.Fatalf("keyward still runs %v after %v", limit, sigs)
	}
	return b.cmd.ProcessState.ExitCode(), time.Since(start)
}

// verifyPolicyArgs returns `verify --policy <file> --trust-store <dir>`
// with a valid policy, so that verify goes past loading it.
func verifyPolicyArgs(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "trustpolicy.json")
	if err := os.WriteFile(policyFile, []byte(`{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:s"],"trustedIdentities":["*"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"verify", "--policy", policyFile, "--trust-store", filepath.Join(dir, "store")}
}

func fifo(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignalEndsWorkThatIgnoresTheContext starts keyward on work that does
// not look at the context (the open of a FIFO without a writer, a read of a
// standard input that never closes, a long validation) and checks that one
// SIGINT or SIGTERM ends it after the 2 s grace period with status 130 or
// 143 and a message, and that a second signal ends it at once.
func TestSignalEndsWorkThatIgnoresTheContext(t *testing.T) {
	ref := "127.0.0.1:1/app@sha256:" + strings.Repeat("0", 64)
	for _, tc := range []struct {
		name    string
		args    func(t *testing.T) []string
		blocked []string // wait channels of the blocking call; nil: CPU-bound
		sigs    []syscall.Signal
	}{
		{"verify --from-file FIFO, SIGTERM", func(t *testing.T) []string { return []string{"verify", "--from-file", fifo(t)} },
			[]string{"wait_for_partner", "fifo_open"}, []syscall.Signal{syscall.SIGTERM}},
		{"verify --password-stdin, SIGINT", func(t *testing.T) []string {
			return append(verifyPolicyArgs(t), "--username", "u", "--password-stdin", ref)
		}, []string{"pipe_read", "pipe_wait"}, []syscall.Signal{syscall.SIGINT}},
		{"verify --from-file FIFO, SIGINT twice", func(t *testing.T) []string { return []string{"verify", "--from-file", fifo(t)} },
			[]string{"wait_for_partner", "fifo_open"}, []syscall.Signal{syscall.SIGINT, syscall.SIGINT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startKeyward(t, tc.args(t)...)
			testenv.WaitBlocked(b.cmd.Process.Pid, 10*time.Second, tc.blocked...)
			status, took := b.signal(t, interrupt.DefaultGrace+5*time.Second, 200*time.Millisecond, tc.sigs...)
			first := tc.sigs[0]
			if want := 128 + int(first); status != want {
				t.Errorf("exit status %d, want %d; stderr: %s", status, want, b.stderr.String())
			}
			name := map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGTERM: "SIGTERM"}[first]
			if !strings.Contains(b.stderr.String(), "interrupted by "+name) {
				t.Errorf("stderr %q does not say that %s interrupted keyward", b.stderr.String(), name)
			}
			// A blocked open or read ignores the context for sure; a
			// validation may one day look at it, or finish sooner.
			if len(tc.sigs) == 1 && tc.blocked != nil && took < interrupt.DefaultGrace {
				t.Errorf("keyward ended %v after the signal, before the %v grace period: the work did not ignore the context", took, interrupt.DefaultGrace)
			}
			if len(tc.sigs) > 1 && took > interrupt.DefaultGrace {
				t.Errorf("keyward ended %v after two signals, want at once", took)
			}
		})
	}
}

// TestSignalCancelsRegistryRequests: verify waiting for a registry that
// accepted the connection and never answers stops at the first signal,
// well within the grace period, through the cancelled context.
func TestSignalCancelsRegistryRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	b := startKeyward(t, append(verifyPolicyArgs(t), "--plain-http", ln.Addr().String()+"/app@sha256:"+strings.Repeat("0", 64))...)
	select {
	case c := <-accepted:
		defer c.Close()
	case <-time.After(20 * time.Second):
		t.Fatalf("keyward did not reach the registry; stderr: %s", b.stderr.String())
	}
	status, took := b.signal(t, interrupt.DefaultGrace+5*time.Second, 0, syscall.SIGTERM)
	if status != 143 || !strings.Contains(b.stderr.String(), "interrupted by SIGTERM; the command stopped before it finished") {
		t.Errorf("exit status %d, stderr %q; want 143 and the interruption", status, b.stderr.String())
	}
	if took >= interrupt.DefaultGrace {
		t.Errorf("keyward took %v to stop, want well within the %v grace period", took, interrupt.DefaultGrace)
	}
}
