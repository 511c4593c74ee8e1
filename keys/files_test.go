package keys_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyward/keyward/keys"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	exact := write("exact", "1234", 0o600)
	tests := []struct {
		name    string
		path    string
		private bool
		kind    keys.ErrorKind
		want    string
	}{
		{"at the limit", exact, true, "", ""},
		{"over the limit", write("large", "12345", 0o600), false, keys.KindInvalid, `PIN file "` + dir + `/large" is larger than 4 bytes`},
		{"missing", filepath.Join(dir, "none"), false, keys.KindInvalid, `PIN file "` + dir + `/none" does not exist`},
		{"directory", dir, false, keys.KindInvalid, `PIN file "` + dir + `" is not a regular file`},
		{"FIFO (must not hang)", fifo, false, keys.KindInvalid, `PIN file "` + fifo + `" is not a regular file`},
		{"readable by others", write("loose", "1", 0o644), true, keys.KindInvalid, "(mode 0644): restrict it with `chmod 600 " + dir + "/loose`"},
		{"readable by others, not secret", write("public", "1", 0o644), false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := keys.ReadFile("PIN file", tc.path, 4, tc.private)
			if tc.kind == "" {
				if err != nil || len(data) == 0 {
					t.Fatalf("ReadFile() = %q, %v; want the content", data, err)
				}
				return
			}
			if !isKind(err, tc.kind) {
				t.Fatalf("ReadFile() error %v, want a %s *keys.Error", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ReadFile() error %q\nwant it to contain %q", err, tc.want)
			}
		})
	}
	if os.Geteuid() != 0 {
		locked := write("locked", "1", 0o000)
		_, err := keys.ReadFile("PIN file", locked, 4, false)
		if !isKind(err, keys.KindAccessDenied) || !strings.Contains(err.Error(), "cannot be read by this user") {
			t.Errorf("unreadable file: %v, want an access-denied error", err)
		}
	}
}
