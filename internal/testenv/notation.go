package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testpki"
	"time"
)

// NotationVersion is the version of the notation CLI scripts/tools.sh builds.
const NotationVersion = "1.3.2"

// commandTimeout bounds one notation run, so that a hung plugin fails the
// test with its output instead of waiting for the test binary's timeout.
const commandTimeout = 5 * time.Minute

// Notation is an isolated notation installation: HOME, XDG_CONFIG_HOME and
// XDG_CACHE_HOME all point into the test's temporary directory (notation
// keeps its configuration and plugins in $XDG_CONFIG_HOME/notation and its
// CRL cache in $XDG_CACHE_HOME/notation), so the user's own configuration is
// never read or touched.
type Notation struct {
	Bin       string   // the notation binary
	Home      string   // $HOME of the notation processes
	ConfigDir string   // $XDG_CONFIG_HOME/notation: signingkeys.json, localkeys/, plugins/, truststore/, trustpolicy.json
	Env       []string // environment of the notation processes; tests may append to it

	isolation []string            // HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME, re-asserted by Run
	localKeys []map[string]string // signingkeys.json's keys, in the order added
}

// NewNotation returns an isolated notation v1.3.2 from scripts/tools.sh.
// Its Env is os.Environ() without HOME, XDG_*, NOTATION_* and DOCKER_CONFIG,
// plus HOME, XDG_CONFIG_HOME and XDG_CACHE_HOME under t.TempDir() and
// NOTATION_EXPERIMENTAL=1 (needed for --oci-layout).
func NewNotation(t testing.TB) *Notation {
	t.Helper()
	bin := Tool(t, "notation")
	root := t.TempDir()
	home := filepath.Join(root, "home")
	config := filepath.Join(root, "config")
	cache := filepath.Join(root, "cache")
	for _, d := range []string{home, config, cache} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	isolation := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + config, "XDG_CACHE_HOME=" + cache}
	env := withoutVars(os.Environ(), func(name string) bool {
		return name == "HOME" || name == "DOCKER_CONFIG" ||
			strings.HasPrefix(name, "XDG_") || strings.HasPrefix(name, "NOTATION_")
	})
	env = append(env, isolation...)
	env = append(env, "NOTATION_EXPERIMENTAL=1")
	return &Notation{
		Bin:       bin,
		Home:      home,
		ConfigDir: filepath.Join(config, "notation"),
		Env:       env,
		isolation: isolation,
	}
}

// withoutVars returns env without the variables whose names drop reports.
func withoutVars(env []string, drop func(name string) bool) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !drop(name) {
			out = append(out, kv)
		}
	}
	return out
}

// InstallPlugin installs binary as the keyward plugin:
// ConfigDir/plugins/keyward/notation-keyward, mode 0755.
func (n *Notation) InstallPlugin(t testing.TB, binary string) {
	t.Helper()
	dir := filepath.Join(n.ConfigDir, "plugins", "keyward")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv: installing the plugin: %v", err)
	}
	if err := copyFile(filepath.Join(dir, "notation-keyward"), binary, 0o755); err != nil {
		t.Fatalf("testenv: installing the plugin: %v", err)
	}
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	// Write a new file and rename it, so that a copy never replaces a
	// binary another process is running ("text file busy").
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".copy-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

// Run runs notation with args in n.Env and returns what it printed. err is
// non-nil when notation could not start or exited non-zero. HOME,
// XDG_CONFIG_HOME and XDG_CACHE_HOME keep their isolated values even if a
// test appended a whole environment (such as [SoftHSM].Env) to n.Env.
func (n *Notation) Run(t testing.TB, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.Bin, args...)
	cmd.Env = append(append([]string(nil), n.Env...), n.isolation...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("notation %s: timed out after %v: %w", strings.Join(args, " "), commandTimeout, err)
	}
	return out.String(), errOut.String(), err
}

// MustRun runs notation like [Notation.Run] and returns its stdout; when
// notation fails, the test fails with both output streams.
func (n *Notation) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := n.Run(t, args...)
	if err != nil {
		t.Fatalf("notation %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// AddTrustStore adds certs as PEM files to the trust store
// ConfigDir/truststore/x509/<storeType>/<name>/, where notation's trust
// policy names it "<storeType>:<name>". storeType is "ca",
// "signingAuthority" or "tsa". Certificates already there stay.
func (n *Notation) AddTrustStore(t testing.TB, storeType, name string, certs ...*x509.Certificate) {
	t.Helper()
	for _, part := range []string{storeType, name} {
		if part == "" || part == "." || part == ".." || strings.ContainsAny(part, `/\`) {
			t.Fatalf("testenv: trust store %q:%q: the type and name must be plain directory names", storeType, name)
		}
	}
	dir := filepath.Join(n.ConfigDir, "truststore", "x509", storeType, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		file := filepath.Join(dir, hex.EncodeToString(sum[:8])+".pem")
		data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
}

// AddLocalKey gives notation a local signing key named name: leaf's key
// and its chain (leaf first, then cas) under ConfigDir/localkeys, listed in
// ConfigDir/signingkeys.json. The first key added is the default.
func (n *Notation) AddLocalKey(t testing.TB, name string, leaf *testpki.Cert, cas ...*testpki.Cert) {
	t.Helper()
	dir := filepath.Join(n.ConfigDir, "localkeys")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	n.localKeys = append(n.localKeys, map[string]string{
		"name":     name,
		"keyPath":  testpki.WriteFile(t, dir, name+".key", testpki.KeyPEM(t, leaf.Key), 0o600),
		"certPath": testpki.WriteFile(t, dir, name+".crt", testpki.CertsPEM(testpki.Chain(append([]*testpki.Cert{leaf}, cas...)...)...), 0o644),
	})
	b, err := json.Marshal(map[string]any{"default": n.localKeys[0]["name"], "keys": n.localKeys})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	testpki.WriteFile(t, n.ConfigDir, "signingkeys.json", b, 0o600)
}

// SetTrustPolicy writes policy, unchecked, as ConfigDir/trustpolicy.json,
// replacing any earlier one.
func (n *Notation) SetTrustPolicy(t testing.TB, policy []byte) {
	t.Helper()
	if err := os.MkdirAll(n.ConfigDir, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := os.WriteFile(filepath.Join(n.ConfigDir, "trustpolicy.json"), policy, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
}
