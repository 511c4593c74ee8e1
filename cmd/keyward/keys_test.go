package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type cliTest struct {
	name    string
	environ map[string]string
	args    []string
	status  int
	stderr  []string
}

// runKeys runs the keyward CLI in-process with the given environment.
func runKeys(t *testing.T, environ map[string]string, args ...string) (status int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	status = run(args, strings.NewReader(""), &out, &errb, func(k string) string { return environ[k] })
	return status, out.String(), errb.String()
}

// TestKeysListUsage covers the command-line errors of keys list, which
// need no token. Listing real tokens is tested end to end with SoftHSM2 in
// test/e2e/pkcs11.
func TestKeysListUsage(t *testing.T) {
	notLib := filepath.Join(t.TempDir(), "libnot.so")
	if err := os.WriteFile(notLib, []byte("text"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []cliTest{
		{"no module", nil, []string{"keys", "list"}, exitUsage, []string{"--module is required", "KEYWARD_PKCS11_MODULE", "Run 'keyward keys list --help'"}},
		{"bad output", nil, []string{"keys", "list", "--module", notLib, "--output", "yaml"}, exitUsage, []string{`--output "yaml" is not supported`}},
		{"extra argument", nil, []string{"keys", "list", "--module", notLib, "extra"}, exitUsage, []string{"unknown command"}},
		{"no pin flag", nil, []string{"keys", "list", "--module", notLib, "--pin", "1234"}, exitUsage, []string{"unknown flag: --pin"}},
	}
	tests = append(tests, moduleTests(notLib)...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, stdout, stderr := runKeys(t, tt.environ, tt.args...)
			if status != tt.status {
				t.Errorf("status %d, want %d; stderr:\n%s", status, tt.status, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr does not contain %q:\n%s", s, stderr)
				}
			}
		})
	}
}

func TestKeysHelpSaysWhereThePINComesFrom(t *testing.T) {
	status, stdout, _ := runKeys(t, nil, "keys", "list", "--help")
	if status != exitOK {
		t.Fatalf("status %d", status)
	}
	for _, s := range []string{"--module", "--token", "--output", "--login", "--pin-source", "KEYWARD_PKCS11_PIN", "never accepted"} {
		if !strings.Contains(stdout, s) {
			t.Errorf("help does not mention %q", s)
		}
	}
}

func TestShellQuote(t *testing.T) {
	if got := shellQuote("pkcs11:token=a;object=b'c?module-path=/x&y"); got != `'pkcs11:token=a;object=b'\''c?module-path=/x&y'` {
		t.Errorf("shellQuote = %s", got)
	}
}
