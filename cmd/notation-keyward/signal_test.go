//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/interrupt"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
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

// TestSignalDuringKeyDerivation signals the plugin while it derives the key
// of an encrypted key file with 10,000,000 PBKDF2 iterations (the most
// keyward accepts, about 10 s of CPU that does not look at the context):
// it must end within the grace period with the protocol's error.
func TestSignalDuringKeyDerivation(t *testing.T) {
	dir := t.TempDir()
	root := testpki.Root(t, "pbkdf2 root")
	leaf := root.Leaf(t, "pbkdf2 leaf")
	chain := testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644)
	pass := testpki.WriteFile(t, dir, "pass.txt", []byte("secret\n"), 0o600)
	key := testpki.WriteFile(t, dir, "key.pem", testpki.PBKDF2KeyPEM(10_000_000), 0o600)
	req, err := json.Marshal(map[string]any{"contractVersion": "1.0", "keyId": "file:" + key,
		"keySpec": "EC-256", "hashAlgorithm": "SHA-256", "payload": []byte("payload"),
		"pluginConfig": map[string]string{"cert_chain": chain, "passphrase_file": pass}})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pluginBinary(t), "generate-signature")
	cmd.Stdin = bytes.NewReader(req)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
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
	time.Sleep(time.Second) // into the derivation
	select {
	case <-done:
		t.Skipf("the derivation ended within a second (%s): this machine needs a costlier key", stderr.String())
	default:
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(interrupt.DefaultGrace + 5*time.Second):
		t.Fatal("the plugin still derives the key long after SIGTERM")
	}
	if status := cmd.ProcessState.ExitCode(); status != 1 || stdout.Len() != 0 {
		t.Errorf("exit status %d, stdout %q; want 1 and nothing", status, stdout.String())
	}
	if code, msg := decodeProtocolError(t, stderr.Bytes()); code != "ERROR" || !strings.Contains(msg, "interrupted by SIGTERM") {
		t.Errorf("error %s %q, want ERROR naming SIGTERM", code, msg)
	}
}
