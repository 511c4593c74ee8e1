package keys_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/keys"
	"github.com/keyward/keyward/keys/filekey"
)

// TestChainCache checks that a chain is remembered only once it passed, and
// that a remembered chain is still checked for everything but its
// signatures: validity at this instant, order and key match.
func TestChainCache(t *testing.T) {
	dir := t.TempDir()
	cacheDir := filepath.Join(dir, "cache")
	root := testpki.Root(t, "cache root")
	key := testpki.Key(t, "EC-256", "cache")
	leaf := root.Leaf(t, "cache leaf", testpki.WithKey(key))
	keyPath := testpki.WriteFile(t, dir, "key.pem", testpki.KeyPEM(t, key), 0o600)
	good := testpki.WriteFile(t, dir, "good.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644)
	noRoot := testpki.WriteFile(t, dir, "noroot.pem", testpki.CertsPEM(leaf.Cert), 0o644)

	opener := func(now time.Time) *keys.Opener {
		return keys.NewOpener(filekey.Backend{Getenv: os.Getenv}).
			WithChainCache(keys.NewChainCache(cacheDir)).
			WithClock(func() time.Time { return now })
	}
	entries := func() int {
		e, _ := os.ReadDir(cacheDir)
		return len(e)
	}
	ctx := context.Background()
	if _, err := opener(time.Now()).Open(ctx, "file:"+keyPath, keys.Config{"cert_chain": noRoot}); err == nil {
		t.Fatal("a chain without its root was accepted")
	}
	if n := entries(); n != 0 {
		t.Fatalf("a refused chain left %d cache entries", n)
	}
	if _, err := opener(time.Now()).Open(ctx, "file:"+keyPath, keys.Config{"cert_chain": good}); err != nil {
		t.Fatal(err)
	}
	if n := entries(); n != 1 {
		t.Fatalf("a verified chain left %d cache entries, want 1", n)
	}
	if _, err := opener(time.Now()).Open(ctx, "file:"+keyPath, keys.Config{"cert_chain": good}); err != nil {
		t.Fatalf("remembered chain: %v", err)
	}
	// Remembered, but expired by now: still refused.
	_, err := opener(time.Now().Add(72*time.Hour)).Open(ctx, "file:"+keyPath, keys.Config{"cert_chain": good})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("remembered chain after expiry: %v, want an expiry error", err)
	}
	// Remembered, but for another key: still refused.
	other := testpki.WriteFile(t, dir, "other.pem", testpki.KeyPEM(t, testpki.Key(t, "EC-256", "cache other")), 0o600)
	_, err = opener(time.Now()).Open(ctx, "file:"+other, keys.Config{"cert_chain": good})
	if err == nil || !strings.Contains(err.Error(), "certifies another key") {
		t.Fatalf("remembered chain with another key: %v", err)
	}
}
