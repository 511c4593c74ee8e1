//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/interrupt"
	"github.com/keyward/keyward/internal/testenv"
)

// TestSignalWhileReadingTheRequest starts the plugin as notation does but
// never closes its standard input: SIGTERM or SIGINT must end it within the
// grace period (a second signal at once) with the protocol's answer to a
// failure, one JSON error on stderr and exit status 1.
func TestSignalWhileReadingTheRequest(t *testing.T) {
	for _, tc := range []struct {
		name, signal string // signal: the name the error gives
		sigs         []syscall.Signal
	}{
		{"SIGTERM", "SIGTERM", []syscall.Signal{syscall.SIGTERM}},
		{"SIGINT", "SIGINT", []syscall.Signal{syscall.SIGINT}},
		{"SIGINT then SIGTERM", "SIGINT", []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if _, err := w.WriteString(`{"contractVersion":"1.0",`); err != nil { // and never the rest
				t.Fatal(err)
			}
			cmd := exec.Command(pluginBinary(t), "describe-key")
			cmd.Stdin = r
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r.Close()
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			defer func() {
				select {
				case <-done:
				default:
					_ = cmd.Process.Kill()
					<-done
				}
			}()
			testenv.WaitBlocked(cmd.Process.Pid, 10*time.Second, "pipe_read", "pipe_wait")
			start := time.Now()
			for i, s := range tc.sigs {
				if i > 0 {
					time.Sleep(200 * time.Millisecond)
				}
				if err := cmd.Process.Signal(s); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-done:
			case <-time.After(interrupt.DefaultGrace + 5*time.Second):
				t.Fatalf("the plugin still runs after %v", tc.sigs)
			}
			took := time.Since(start)
			if status := cmd.ProcessState.ExitCode(); status != 1 || stdout.Len() != 0 {
				t.Errorf("exit status %d, stdout %q; want 1 and nothing", status, stdout.String())
			}
			code, msg := decodeProtocolError(t, stderr.Bytes())
			if code != "ERROR" || !strings.Contains(msg, "interrupted by "+tc.signal) || !strings.Contains(msg, "describe-key") {
				t.Errorf("error %s %q, want ERROR naming the signal and the command", code, msg)
			}
			if len(tc.sigs) == 1 && took < interrupt.DefaultGrace {
				t.Errorf("the plugin ended %v after the signal, before the grace period, while blocked reading", took)
			}
			if len(tc.sigs) > 1 && took > interrupt.DefaultGrace {
				t.Errorf("the plugin ended %v after two signals, want at once", took)
			}
		})
	}
}
