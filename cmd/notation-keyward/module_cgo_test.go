//go:build cgo && unix

package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
)

// TestBrokenPKCS11Module gives the real binary PKCS#11 modules whose
// C_GetFunctionList fails, returns no list or a list without C_Initialize,
// or that need a symbol no library has. miekg/pkcs11 alone calls through
// the missing list (a segmentation fault: exit status 2, nothing on stderr);
// notation must instead get a VALIDATION_ERROR naming the problem, exit 1.
func TestBrokenPKCS11Module(t *testing.T) {
	for _, tc := range []struct{ kind, want string }{
		{testenv.ModuleGetFunctionListFails, "C_GetFunctionList failed with CKR_GENERAL_ERROR"},
		{testenv.ModuleNullFunctionList, "returned CKR_OK but no function list"},
		{testenv.ModuleNoInitialize, "function list has no C_Initialize"},
		{testenv.ModuleUnresolvedSymbol, "keyward_test_nowhere"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			lib := testenv.BrokenPKCS11Module(t, tc.kind)
			for _, command := range []string{"describe-key", "generate-signature"} {
				req, err := json.Marshal(map[string]any{"contractVersion": "1.0", "keyId": "pkcs11:token=t;object=k?module-path=" + lib,
					"keySpec": "EC-256", "hashAlgorithm": "SHA-256", "payload": []byte("payload")})
				if err != nil {
					t.Fatal(err)
				}
				m := exchangeMeasured(t, command, req)
				if m.status != 1 || len(m.stdout) != 0 {
					t.Fatalf("%s: exit status %d, stdout %q, stderr %q; want 1 and nothing on stdout", command, m.status, m.stdout, m.stderr)
				}
				code, msg := decodeProtocolError(t, m.stderr)
				if code != "VALIDATION_ERROR" || !strings.Contains(msg, tc.want) || !strings.Contains(msg, lib) {
					t.Errorf("%s: error %s %q, want a VALIDATION_ERROR naming the module and %q", command, code, msg, tc.want)
				}
			}
		})
	}
}
