//go:build unix

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
)

// measured is one run of the plugin binary with what it cost.
type measured struct {
	status         int
	stdout, stderr []byte
	elapsed        time.Duration
	maxRSS         int64 // peak resident set, bytes (getrusage ru_maxrss)
}

// exchangeMeasured runs the binary like exchange and also reports its wall
// time and peak memory.
func exchangeMeasured(t *testing.T, command string, stdin []byte) measured {
	t.Helper()
	cmd := exec.Command(pluginBinary(t), command)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	start := time.Now()
	err := cmd.Run()
	m := measured{elapsed: time.Since(start), stdout: out.Bytes(), stderr: errw.Bytes()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		m.status = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.maxRSS = int64(ru.Maxrss) << 10 // kilobytes on Linux
	}
	return m
}

// decodeProtocolError decodes stderr as exactly one protocol error.
func decodeProtocolError(t *testing.T, stderr []byte) (code, message string) {
	t.Helper()
	var e struct {
		Code    string `json:"errorCode"`
		Message string `json:"errorMessage"`
	}
	dec := json.NewDecoder(bytes.NewReader(stderr))
	if err := dec.Decode(&e); err != nil || dec.More() {
		t.Fatalf("stderr %q is not exactly one JSON error: %v", stderr, err)
	}
	return e.Code, e.Message
}

// TestHostileScryptKey gives the real binary encrypted keys whose scrypt
// parameters would need 512 GiB of memory or hours of CPU: notation must get
// a VALIDATION_ERROR naming the parameters, exit status 1, at once and
// without the allocation.
func TestHostileScryptKey(t *testing.T) {
	dir := t.TempDir()
	root := testpki.Root(t, "scrypt root")
	leaf := root.Leaf(t, "scrypt leaf")
	chain := testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644)
	pass := testpki.WriteFile(t, dir, "pass.txt", []byte("secret\n"), 0o600)
	for _, tc := range []struct {
		name    string
		n, r, p int
	}{
		{"512 GiB", 1 << 22, 1024, 1},
		{"p=1024", 1 << 22, 1, 1024},
		{"hours of CPU", 1 << 14, 1, 1 << 20},
		{"N=2^40", 1 << 40, 8, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := testpki.WriteFile(t, t.TempDir(), "key.pem", testpki.ScryptKeyPEM(tc.n, tc.r, tc.p), 0o600)
			req, err := json.Marshal(map[string]any{"contractVersion": "1.0", "keyId": "file:" + key,
				"keySpec": "EC-256", "hashAlgorithm": "SHA-256", "payload": []byte("payload"),
				"pluginConfig": map[string]string{"cert_chain": chain, "passphrase_file": pass}})
			if err != nil {
				t.Fatal(err)
			}
			// describe-key reads the public key from the chain;
			// generate-signature decrypts the key.
			const command = "generate-signature"
			m := exchangeMeasured(t, command, req)
			if m.status != 1 || len(m.stdout) != 0 {
				t.Fatalf("%s: exit status %d, stdout %q, stderr %q; want 1 and nothing on stdout", command, m.status, m.stdout, m.stderr)
			}
			code, msg := decodeProtocolError(t, m.stderr)
			if code != "VALIDATION_ERROR" || !strings.Contains(msg, "scrypt parameters N=") {
				t.Errorf("%s: error %s %q, want a VALIDATION_ERROR naming the scrypt parameters", command, code, msg)
			}
			if m.elapsed > time.Second {
				t.Errorf("%s: the refusal took %v, want under 1s", command, m.elapsed)
			}
			if m.maxRSS > 100<<20 {
				t.Errorf("%s: peak RSS %d MiB, want < 100 MiB", command, m.maxRSS>>20)
			}
		})
	}
}

// TestFIFOAsP11KitModuleConfig names, through module-name, a p11-kit module
// config that is a FIFO without a writer: opening it would block forever.
// describe-key must answer at once with a VALIDATION_ERROR.
func TestFIFOAsP11KitModuleConfig(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "pkcs11", "modules")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "evil.module"), 0o644); err != nil {
		t.Fatal(err)
	}
	req := []byte(`{"contractVersion":"1.0","keyId":"pkcs11:token=t;object=k?module-name=evil"}`)
	cmd := exec.Command(pluginBinary(t), "describe-key")
	cmd.Stdin = bytes.NewReader(req)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatal("describe-key hangs on a FIFO named as the p11-kit module config")
	}
	if status := cmd.ProcessState.ExitCode(); status != 1 || stdout.Len() != 0 {
		t.Fatalf("exit status %d, stdout %q; want 1 and nothing", status, stdout.String())
	}
	if code, msg := decodeProtocolError(t, stderr.Bytes()); code != "VALIDATION_ERROR" || !strings.Contains(msg, "evil") {
		t.Errorf("error %s %q, want a VALIDATION_ERROR about module-name=evil", code, msg)
	}
}

// TestPINNeverEchoed gives the real binary key ids with a PIN written into
// them, in the path or the query of a PKCS#11 URI, in a file: key id and
// under an unknown scheme: every command fails, and neither stdout nor
// stderr repeats the PIN.
func TestPINNeverEchoed(t *testing.T) {
	const pin = "918273645"
	ids := []string{
		"pkcs11:token=t;pin-value=" + pin + ";object=k",
		"pkcs11:token=t;PIN-VALUE=" + pin + ";bogus=1",
		"pkcs11:token=t;pin=" + pin + ";object=k",
		"pkcs11:token=t;pin%2Dvalue=" + pin + "#x",
		"pkcs11:token=t;object=k?pin-value=" + pin,
		"pkcs11:token=t;object=k?module-path=/m.so&pin=" + pin,
		"file:/etc/keys/k.pem;pin-value=" + pin,
		"file:///etc/keys/k.pem?pin-value=" + pin,
		"file://host/k.pem?password=" + pin,
		"pkcs12:token=t;pin-value=" + pin,
	}
	for _, id := range ids {
		for _, command := range []string{"describe-key", "generate-signature"} {
			req, err := json.Marshal(map[string]any{"contractVersion": "1.0", "keyId": id,
				"keySpec": "EC-256", "hashAlgorithm": "SHA-256", "payload": []byte("payload")})
			if err != nil {
				t.Fatal(err)
			}
			status, out, errOut := exchange(t, command, req)
			if status != 1 {
				t.Errorf("%s %s: exit status %d, want 1", command, id, status)
			}
			if bytes.Contains(out, []byte(pin)) || bytes.Contains(errOut, []byte(pin)) {
				t.Errorf("%s %s: the PIN is repeated: stdout %q stderr %q", command, id, out, errOut)
			}
			if code, _ := decodeProtocolError(t, errOut); code != "VALIDATION_ERROR" {
				t.Errorf("%s %s: error code %s, want VALIDATION_ERROR", command, id, code)
			}
		}
	}
}
