package upstream

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRequired(t *testing.T) {
	const mod = "github.com/notaryproject/notation-core-go"
	tests := []struct {
		name, gomod, want string
		err               error
	}{
		{"block", "module x\n\ngo 1.24\n\nrequire (\n\tgithub.com/a/b v1.0.0\n\t" + mod + " v1.3.0\n)\n", "v1.3.0", nil},
		{"indirect", "module x\nrequire (\n\t" + mod + " v1.2.1 // indirect\n)\n", "v1.2.1", nil},
		{"single line", "module x\nrequire " + mod + " v1.4.0\n", "v1.4.0", nil},
		{"prefix of another module", "module x\nrequire " + mod + "-extra v9.0.0\n", "", ErrNotRequired},
		{"absent", "module x\nrequire github.com/a/b v1.0.0\n", "", ErrNotRequired},
		{"excluded only", "module x\nexclude (\n\t" + mod + " v1.3.0\n)\n", "", ErrNotRequired},
		{"replaced", "module x\nrequire " + mod + " v1.3.0\nreplace " + mod + " => ../core\n", "", ErrReplaced},
		{"replaced in a block", "module x\nrequire " + mod + " v1.3.0\nreplace (\n\t" + mod + " v1.3.0 => example.com/fork v1.3.1\n)\n", "", ErrReplaced},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(tc.gomod), 0o600); err != nil {
				t.Fatal(err)
			}
			sub := filepath.Join(dir, "a", "b")
			if err := os.MkdirAll(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			got, err := Required(sub, mod)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Required() = %q, %v; want an error wrapping %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Required() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
