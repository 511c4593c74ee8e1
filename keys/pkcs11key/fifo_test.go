//go:build unix

package pkcs11key

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/keys"
)

// TestP11KitConfigFIFO: a FIFO named like a p11-kit module config must not
// block module-name resolution (open(2) of a FIFO waits for a writer).
func TestP11KitConfigFIFO(t *testing.T) {
	kitDir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(kitDir, "evil.module"), 0o644); err != nil {
		t.Fatal(err)
	}
	be := Backend{Getenv: env(nil), moduleDirs: []string{t.TempDir()}, p11kitDirs: []string{kitDir}}
	u, err := ParseURI("pkcs11:token=t;object=k?module-name=evil")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := be.resolveModule(u, nil)
		done <- err
	}()
	select {
	case err := <-done:
		if keys.KindOf(err) != keys.KindInvalid {
			t.Errorf("resolveModule() = %v, want an invalid-configuration error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("resolving module-name hangs on a FIFO p11-kit config")
	}
}
