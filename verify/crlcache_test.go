package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"

	"github.com/keyward/keyward/internal/testpki"
)

// crlBundle returns a bundle parsed from what srv serves now.
func crlBundle(t *testing.T, srv *testpki.CRLServer, delta bool) *corecrl.Bundle {
	t.Helper()
	base, err := srv.CRL(false)
	if err != nil {
		t.Fatal(err)
	}
	b := &corecrl.Bundle{}
	if b.BaseCRL, err = x509.ParseRevocationList(base); err != nil {
		t.Fatal(err)
	}
	if delta {
		d, err := srv.CRL(true)
		if err != nil {
			t.Fatal(err)
		}
		if b.DeltaCRL, err = x509.ParseRevocationList(d); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func newTestFileCache(t *testing.T) *FileCache {
	t.Helper()
	c, err := NewFileCache(filepath.Join(t.TempDir(), "crl"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFileCacheRoundTrip(t *testing.T) {
	ca := testpki.Root(t, "crlcache-root")
	srv := testpki.StartCRL(t, ca, testpki.CRLWithDelta())
	srv.Revoke(big.NewInt(42), time.Now().Add(-time.Hour))
	srv.RevokeInDelta(big.NewInt(43), time.Now().Add(-time.Minute))
	c := newTestFileCache(t)
	ctx := context.Background()

	if _, err := c.Get(ctx, srv.URL()); !errors.Is(err, corecrl.ErrCacheMiss) {
		t.Fatalf("empty cache: %v, want a miss", err)
	}
	for _, delta := range []bool{false, true} {
		want := crlBundle(t, srv, delta)
		if err := c.Set(ctx, srv.URL(), want); err != nil {
			t.Fatal(err)
		}
		got, err := c.Get(ctx, srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.BaseCRL.Raw, want.BaseCRL.Raw) {
			t.Error("base CRL changed in the cache")
		}
		if (got.DeltaCRL == nil) != !delta || (delta && !bytes.Equal(got.DeltaCRL.Raw, want.DeltaCRL.Raw)) {
			t.Errorf("delta CRL: got %v, want delta %v", got.DeltaCRL != nil, delta)
		}
	}
	// Another URL is another entry.
	if _, err := c.Get(ctx, srv.URL()+"?other"); !errors.Is(err, corecrl.ErrCacheMiss) {
		t.Errorf("other URL: %v, want a miss", err)
	}

	// One private file per URL, no temporary file left behind.
	entries, err := os.ReadDir(c.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), ".crl") || len(entries[0].Name()) != 64+4 {
		t.Fatalf("cache directory holds %v, want one <sha256>.crl file", entries)
	}
	if fi, _ := entries[0].Info(); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(c.Dir()); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o700 {
		t.Errorf("cache directory mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestFileCacheHonoursNextUpdate(t *testing.T) {
	ca := testpki.Root(t, "crlcache-expiry-root")
	srv := testpki.StartCRL(t, ca, testpki.CRLExpired())
	c := newTestFileCache(t)
	ctx := context.Background()
	if err := c.Set(ctx, srv.URL(), crlBundle(t, srv, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, srv.URL()); !errors.Is(err, corecrl.ErrCacheMiss) {
		t.Fatalf("expired CRL: %v, want a miss", err)
	}
	if _, err := os.Stat(c.path(srv.URL())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("expired entry not removed: %v", err)
	}

	// A CRL without NextUpdate is never stored.
	b := crlBundle(t, srv, false)
	b.BaseCRL.NextUpdate = time.Time{}
	if err := c.Set(ctx, srv.URL(), b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.path(srv.URL())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CRL without NextUpdate stored: %v", err)
	}
}

func TestFileCacheRefusesBadFiles(t *testing.T) {
	ca := testpki.Root(t, "crlcache-bad-root")
	srv := testpki.StartCRL(t, ca)
	ctx := context.Background()
	good := encodeCRLFile(srv.URL(), crlBundle(t, srv, false).BaseCRL.Raw, nil)

	tests := []struct {
		name  string
		write func(t *testing.T, c *FileCache, p string)
		miss  bool // a miss rather than an error
	}{
		{"another-url-with-the-same-name", func(t *testing.T, c *FileCache, p string) {
			writeFile(t, p, encodeCRLFile("http://other.example/crl", crlBundle(t, srv, false).BaseCRL.Raw, nil))
		}, true},
		{"not-a-cache-file", func(t *testing.T, c *FileCache, p string) { writeFile(t, p, []byte("hello")) }, false},
		{"truncated", func(t *testing.T, c *FileCache, p string) { writeFile(t, p, good[:len(good)-10]) }, false},
		{"trailing-bytes", func(t *testing.T, c *FileCache, p string) { writeFile(t, p, append(bytes.Clone(good), 0)) }, false},
		{"huge-length", func(t *testing.T, c *FileCache, p string) {
			writeFile(t, p, append(bytes.Clone(crlFileMagic), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f))
		}, false},
		{"not-a-crl", func(t *testing.T, c *FileCache, p string) {
			writeFile(t, p, encodeCRLFile(srv.URL(), []byte("not DER"), nil))
		}, false},
		{"too-large", func(t *testing.T, c *FileCache, p string) {
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(maxCRLCacheEntry + 1); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}, false},
		{"directory", func(t *testing.T, c *FileCache, p string) {
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"fifo (must not hang)", func(t *testing.T, c *FileCache, p string) {
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"symlink", func(t *testing.T, c *FileCache, p string) {
			target := filepath.Join(t.TempDir(), "elsewhere")
			writeFile(t, target, good)
			if err := os.Symlink(target, p); err != nil {
				t.Skip("no symlinks here:", err)
			}
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestFileCache(t)
			tc.write(t, c, c.path(srv.URL()))
			b, err := c.Get(ctx, srv.URL())
			switch {
			case b != nil:
				t.Fatal("a bad file gave a bundle")
			case tc.miss && !errors.Is(err, corecrl.ErrCacheMiss):
				t.Fatalf("got %v, want a miss", err)
			case !tc.miss && (err == nil || errors.Is(err, corecrl.ErrCacheMiss)):
				t.Fatalf("got %v, want an error", err)
			}
		})
	}
}

func TestFileCacheRefusesSymlinkedDirectory(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Skip("no symlinks here:", err)
	}
	if _, err := NewFileCache(link); err == nil {
		t.Fatal("a symlinked cache directory was accepted")
	}
	if _, err := NewFileCache(""); err == nil {
		t.Fatal("an empty directory name was accepted")
	}
}

func TestFileCacheSetRefuses(t *testing.T) {
	c := newTestFileCache(t)
	ctx := context.Background()
	if err := c.Set(ctx, "http://x/crl", nil); err == nil {
		t.Error("nil bundle stored")
	}
	if err := c.Set(ctx, "http://x/crl", &corecrl.Bundle{}); err == nil {
		t.Error("bundle without base CRL stored")
	}
	ca := testpki.Root(t, "crlcache-set-root")
	srv := testpki.StartCRL(t, ca)
	if err := c.Set(ctx, "http://x/"+strings.Repeat("a", maxCRLURLLength), crlBundle(t, srv, false)); err == nil {
		t.Error("overlong URL stored")
	}
}

// TestFileCacheConcurrent writes and reads one entry from many goroutines:
// readers see a whole file or none, never a torn one.
func TestFileCacheConcurrent(t *testing.T) {
	ca := testpki.Root(t, "crlcache-concurrent-root")
	srv := testpki.StartCRL(t, ca)
	c := newTestFileCache(t)
	ctx := context.Background()
	bundles := []*corecrl.Bundle{crlBundle(t, srv, false), crlBundle(t, srv, false)}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if err := c.Set(ctx, srv.URL(), bundles[(i+j)%2]); err != nil {
					t.Error(err)
				}
			}
		}(i)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, err := c.Get(ctx, srv.URL()); err != nil && !errors.Is(err, corecrl.ErrCacheMiss) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	entries, _ := os.ReadDir(c.Dir())
	if len(entries) != 1 {
		t.Errorf("%d files left, want 1", len(entries))
	}
}

// TestFileCacheWithCoreFetcher uses the cache as notation-core-go's CRL
// fetcher does: a second fetcher (a later run) gets the CRL from disk.
func TestFileCacheWithCoreFetcher(t *testing.T) {
	ca := testpki.Root(t, "crlcache-fetcher-root")
	srv := testpki.StartCRL(t, ca)
	c := newTestFileCache(t)
	for run := 0; run < 2; run++ {
		f, err := corecrl.NewHTTPFetcher(&http.Client{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		f.Cache = c
		if _, err := f.Fetch(context.Background(), srv.URL()); err != nil {
			t.Fatal(err)
		}
	}
	if base, _ := srv.Requests(); base != 1 {
		t.Fatalf("%d downloads for two runs, want 1", base)
	}
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
