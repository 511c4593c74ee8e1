// Package upstream pins keyward's copies of upstream code (internal/coreshim,
// internal/chainrules) to the module versions they were read from: their
// tests compare the version each copy names with the one go.mod requires,
// and fail when an upgrade leaves a copy behind.
package upstream

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrReplaced is wrapped by [Required] when go.mod replaces the module.
var ErrReplaced = errors.New("the module is replaced")

// ErrNotRequired is wrapped by [Required] when go.mod does not require the
// module.
var ErrNotRequired = errors.New("the module is not required")

// Required returns the version of module that the go.mod found in dir or
// the nearest folder above it requires. A replace directive for the module
// is an error ([ErrReplaced]): the copy may no longer match what is built.
func Required(dir, module string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "go.mod")
		data, err := os.ReadFile(p)
		if err == nil {
			return required(p, string(data), module)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in or above %s", dir)
		}
		dir = parent
	}
}

// required reads module's version from the go.mod text gomod (at path).
func required(path, gomod, module string) (string, error) {
	version, block := "", ""
	for _, line := range strings.Split(gomod, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		verb := block
		switch {
		case f[0] == ")":
			block = ""
			continue
		case len(f) == 2 && f[1] == "(":
			block = f[0]
			continue
		case f[0] == "require" || f[0] == "replace":
			verb, f = f[0], f[1:]
		}
		if len(f) < 2 || f[0] != module {
			continue
		}
		switch verb {
		case "replace":
			return "", fmt.Errorf("%s: %s: %w; check the copies of its code against the replacement, then pin them", path, module, ErrReplaced)
		case "require":
			version = f[1]
		}
	}
	if version == "" {
		return "", fmt.Errorf("%s: %s: %w", path, module, ErrNotRequired)
	}
	return version, nil
}
