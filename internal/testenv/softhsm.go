package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// softhsmModules are the places the SoftHSM2 PKCS#11 library is looked for,
// in order; the first is where Debian's softhsm2 package puts it.
var softhsmModules = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

// SoftHSM is an isolated SoftHSM2: its configuration file (SOFTHSM2_CONF)
// and token directory live in t.TempDir(), and it holds the tokens NewSoftHSM
// and AddToken initialised. Processes find it through Env.
type SoftHSM struct {
	Module string   // the PKCS#11 library to load
	Conf   string   // the SOFTHSM2_CONF file
	Label  string   // label of the first token
	PIN    string   // user PIN of the first token
	SOPIN  string   // security officer PIN of every token
	Env    []string // os.Environ() with SOFTHSM2_CONF=Conf

	util string // softhsm2-util
}

// NewSoftHSM creates an isolated SoftHSM2 with one token, initialised with
// softhsm2-util --init-token --free --label label and a random SO PIN and
// user PIN. SoftHSM gives the token a random slot id; select it by label.
func NewSoftHSM(t testing.TB, label string) *SoftHSM {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		Missing(t, "softhsm2-util is not on PATH; run `make tools` (it installs the softhsm2 package)")
		return nil
	}
	module := ""
	for _, m := range softhsmModules {
		if _, err := os.Stat(m); err == nil {
			module = m
			break
		}
	}
	if module == "" {
		Missing(t, "the SoftHSM2 PKCS#11 module is in none of %v; run `make tools` (it installs the softhsm2 package)", softhsmModules)
		return nil
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	data := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n", tokens)
	if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env := withoutVars(os.Environ(), func(name string) bool { return name == "SOFTHSM2_CONF" })
	h := &SoftHSM{
		Module: module,
		Conf:   conf,
		Label:  label,
		SOPIN:  randomHex(8),
		Env:    append(env, "SOFTHSM2_CONF="+conf),
		util:   util,
	}
	h.PIN = h.AddToken(t, label)
	return h
}

// AddToken initialises another token, labelled label, in the same SoftHSM2
// and returns its random user PIN. Its SO PIN is h.SOPIN.
func (h *SoftHSM) AddToken(t testing.TB, label string) (pin string) {
	t.Helper()
	pin = randomHex(8)
	// The PINs are random and used only by this test; softhsm2-util takes
	// them only as arguments.
	cmd := exec.Command(h.util, "--init-token", "--free", "--label", label, "--so-pin", h.SOPIN, "--pin", pin)
	cmd.Env = h.Env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: softhsm2-util --init-token --label %q: %v\n%s", label, err, out)
	}
	return pin
}
