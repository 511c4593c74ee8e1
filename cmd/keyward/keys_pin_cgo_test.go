//go:build cgo

package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
)

// TestKeysListNeverEchoesPIN runs keys list on a SoftHSM2 token with the
// PIN where it does not belong (as --pin-source, the PIN file's flag) and
// with a wrong PIN: the listing fails or goes on without login, and neither
// stdout nor stderr repeats either PIN.
func TestKeysListNeverEchoesPIN(t *testing.T) {
	h := testenv.NewSoftHSM(t, "pins")
	const wrong = "55501234"
	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"PIN as --pin-source", nil, []string{"--login", "--pin-source", h.PIN}},
		{"PIN as --pin-source file:", nil, []string{"--login", "--pin-source", "file:" + h.PIN}},
		{"wrong PIN", []string{"KEYWARD_PKCS11_PIN=" + wrong}, []string{"--login"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(testenv.KeywardBinary(t), append([]string{"keys", "list", "--module", h.Module, "--output", "json"}, tc.args...)...)
			cmd.Env = append(append(h.Env, "KEYWARD_PKCS11_PIN="), tc.env...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil {
				t.Errorf("keys list succeeded; stdout %s", stdout.String())
			}
			for _, secret := range []string{h.PIN, wrong} {
				if strings.Contains(stdout.String(), secret) || strings.Contains(stderr.String(), secret) {
					t.Errorf("a PIN is repeated: stdout %q stderr %q", stdout.String(), stderr.String())
				}
			}
			t.Logf("stderr: %s", stderr.String())
			if stderr.Len() == 0 {
				t.Error("no error message")
			}
		})
	}
}
