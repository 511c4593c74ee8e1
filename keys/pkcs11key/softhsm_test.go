//go:build cgo

package pkcs11key_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/keys/pkcs11key/pkcs11test"
)

// softHSMModules are where Debian, Fedora and source builds install SoftHSM2.
var softHSMModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
}

// hsm is the SoftHSM2 of this test binary: its own SOFTHSM2_CONF and token
// directory, set up in TestMain, so that tests never touch the machine's
// tokens.
var hsm struct {
	module, util string
	dir          string
	err          error // why SoftHSM2 cannot run here
	mu           sync.Mutex
	tokens       int
}

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "keyward-pkcs11key-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		setupSoftHSM(dir)
		return m.Run()
	}()
	os.Exit(code)
}

func setupSoftHSM(dir string) {
	for _, p := range softHSMModules {
		if _, err := os.Stat(p); err == nil {
			hsm.module = p
			break
		}
	}
	util, err := exec.LookPath("softhsm2-util")
	if hsm.module == "" || err != nil {
		hsm.err = fmt.Errorf("SoftHSM2 is not installed (module in %v, softhsm2-util in PATH); run `make tools` or apt-get install softhsm2", softHSMModules)
		return
	}
	hsm.util = util
	hsm.dir = dir
	tokens := filepath.Join(dir, "tokens")
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		hsm.err = err
		return
	}
	data := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		hsm.err = err
		return
	}
	// SoftHSM reads its configuration at C_Initialize from this variable;
	// it is set once for the whole test binary.
	os.Setenv("SOFTHSM2_CONF", conf)
}

// requireSoftHSM skips the test when SoftHSM2 cannot run here, and fails it
// under CI=true, where a missing component is an error (testenv.Missing).
func requireSoftHSM(t *testing.T) {
	t.Helper()
	if hsm.err == nil {
		return
	}
	testenv.Missing(t, "%v", hsm.err)
}

// newToken initializes a fresh token with a random-ish label and returns it.
func newToken(t *testing.T, label string) pkcs11test.Token {
	t.Helper()
	requireSoftHSM(t)
	hsm.mu.Lock()
	hsm.tokens++
	label = fmt.Sprintf("%s-%d", label, hsm.tokens)
	hsm.mu.Unlock()
	tok := pkcs11test.Token{Module: hsm.module, Label: label, PIN: "4711+" + label}
	out, err := exec.Command(hsm.util, "--init-token", "--free", "--label", label,
		"--so-pin", "so-"+label, "--pin", tok.PIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "initialized") {
		t.Fatalf("softhsm2-util --init-token: %s", out)
	}
	return tok
}
