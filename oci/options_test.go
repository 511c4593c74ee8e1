package oci

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestIsLocalhost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "localhost:5000": true,
		"127.0.0.1:5000": false, "[::1]:5000": false, "localhost.example.com": false, "registry.example.com:443": false,
	} {
		if got := IsLocalhost(host); got != want {
			t.Errorf("IsLocalhost(%q) = %v", host, got)
		}
	}
}

func TestRootCAsWithFile(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RootCAsWithFile(empty); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("a file without certificates: %v", err)
	}
	if _, err := RootCAsWithFile(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}
}
