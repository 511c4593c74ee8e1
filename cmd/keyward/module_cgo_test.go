//go:build cgo && unix

package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
)

// TestKeysListBrokenModule: keys list on a module whose C_GetFunctionList
// fails or returns no list reports it and exits 1, where miekg/pkcs11 alone
// crashes with a segmentation fault (exit status 2).
func TestKeysListBrokenModule(t *testing.T) {
	for _, tc := range []struct{ kind, want string }{
		{testenv.ModuleGetFunctionListFails, "C_GetFunctionList failed with CKR_GENERAL_ERROR"},
		{testenv.ModuleNullFunctionList, "returned CKR_OK but no function list"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			lib := testenv.BrokenPKCS11Module(t, tc.kind)
			cmd := exec.Command(testenv.KeywardBinary(t), "keys", "list", "--module", lib)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run()
			if status := cmd.ProcessState.ExitCode(); status != exitFailure || stdout.Len() != 0 {
				t.Errorf("exit status %d, stdout %q; want %d and nothing", status, stdout.String(), exitFailure)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tc.want)
			}
		})
	}
}
