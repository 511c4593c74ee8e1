package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"

	"github.com/keyward/keyward/internal/bounded"
)

// Bounds of the CRL file cache. notation-core-go downloads CRLs of at most
// 32 MiB (crl/fetcher.go maxCRLSize), a base and a delta per URL.
const (
	maxCRLSize       = 32 << 20
	maxCRLURLLength  = 8 << 10
	maxCRLCacheEntry = 2*maxCRLSize + maxCRLURLLength + 64
)

// crlFileMagic starts every cache file, naming the format and its version.
var crlFileMagic = []byte("keyward-crl-cache/1\n")

// FileCache is a CRL cache on disk, a notation-core-go crl.Cache: a CRL
// downloaded once is reused by later runs until its NextUpdate (spec
// "CRL": a CRL is valid until NextUpdate). Each URL is one file named by
// the SHA-256 of the URL, holding the URL (checked on read) and the DER base
// and delta CRLs. Writes are atomic (a temporary file renamed into place),
// reads and writes are size-bounded, files are private to the user, and
// symlinks or other non-regular files are never followed. Files are not
// trusted: core verifies every CRL's signature against the issuer on use.
//
// Give keyward a directory of its own (such as $XDG_CACHE_HOME/keyward/crl),
// not notation's {NOTATION_CACHE}/crl: the file formats differ, so sharing
// one would make each tool discard and rewrite the other's files.
type FileCache struct {
	dir string
}

var _ corecrl.Cache = (*FileCache)(nil)

// NewFileCache returns a cache in dir, created (mode 0700) if needed. dir
// must be a directory, not a symlink to one.
func NewFileCache(dir string) (*FileCache, error) {
	if dir == "" {
		return nil, errors.New("crl cache: empty directory")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("crl cache: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("crl cache: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("crl cache: %s is not a directory (symlinks are not followed)", dir)
	}
	return &FileCache{dir: dir}, nil
}

// Dir returns the cache's directory.
func (c *FileCache) Dir() string { return c.dir }

func (c *FileCache) path(url string) string {
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.dir, hex.EncodeToString(sum[:])+".crl")
}

// Get returns the CRLs cached for url, or an error wrapping
// crl.ErrCacheMiss when there are none, when they belong to another URL, or
// when the base or delta CRL is past its NextUpdate (an expired file is
// removed).
func (c *FileCache) Get(ctx context.Context, url string) (*corecrl.Bundle, error) {
	p := c.path(url)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, corecrl.ErrCacheMiss
	}
	if err != nil {
		return nil, fmt.Errorf("crl cache: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("crl cache: %s is not a regular file", p)
	}
	if fi.Size() > maxCRLCacheEntry {
		return nil, fmt.Errorf("crl cache: %s is %d bytes, more than the %d allowed", p, fi.Size(), maxCRLCacheEntry)
	}
	// bounded.OpenRegular checks the type again and opens without
	// blocking: a FIFO put in place of the entry since the Lstat cannot
	// hang the verification.
	f, _, err := bounded.OpenRegular(p)
	switch {
	case errors.Is(err, bounded.ErrChanged), errors.Is(err, fs.ErrNotExist):
		// Another process (or goroutine) replaced or removed the entry
		// since the Lstat: a miss, not a broken cache.
		return nil, corecrl.ErrCacheMiss
	case err != nil:
		return nil, fmt.Errorf("crl cache: %w", err)
	}
	defer f.Close()
	data, err := bounded.ReadAll(f, maxCRLCacheEntry, "")
	var tl *bounded.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, fmt.Errorf("crl cache: %s is more than %d bytes", p, maxCRLCacheEntry)
	case err != nil:
		return nil, fmt.Errorf("crl cache: read %s: %w", p, err)
	}
	gotURL, base, delta, err := decodeCRLFile(data)
	if err != nil {
		return nil, fmt.Errorf("crl cache: %s: %w", p, err)
	}
	if gotURL != url {
		return nil, corecrl.ErrCacheMiss // another URL with the same hash
	}
	b := &corecrl.Bundle{}
	if b.BaseCRL, err = x509.ParseRevocationList(base); err != nil {
		return nil, fmt.Errorf("crl cache: %s: base CRL: %w", p, err)
	}
	if len(delta) > 0 {
		if b.DeltaCRL, err = x509.ParseRevocationList(delta); err != nil {
			return nil, fmt.Errorf("crl cache: %s: delta CRL: %w", p, err)
		}
	}
	now := time.Now()
	if !current(b.BaseCRL, now) || (b.DeltaCRL != nil && !current(b.DeltaCRL, now)) {
		_ = os.Remove(p) // best effort: a newer CRL will replace it anyway
		return nil, corecrl.ErrCacheMiss
	}
	return b, nil
}

// Set stores the CRLs of url. A CRL without NextUpdate is not stored: it
// could never be known fresh.
func (c *FileCache) Set(ctx context.Context, url string, b *corecrl.Bundle) error {
	if b == nil || b.BaseCRL == nil {
		return errors.New("crl cache: no base CRL to store")
	}
	if len(url) > maxCRLURLLength {
		return fmt.Errorf("crl cache: URL of %d bytes is longer than the %d allowed", len(url), maxCRLURLLength)
	}
	if b.BaseCRL.NextUpdate.IsZero() || (b.DeltaCRL != nil && b.DeltaCRL.NextUpdate.IsZero()) {
		return nil
	}
	var delta []byte
	if b.DeltaCRL != nil {
		delta = b.DeltaCRL.Raw
	}
	if len(b.BaseCRL.Raw) > maxCRLSize || len(delta) > maxCRLSize {
		return fmt.Errorf("crl cache: CRL larger than %d bytes", maxCRLSize)
	}
	return c.writeAtomic(c.path(url), encodeCRLFile(url, b.BaseCRL.Raw, delta))
}

// writeAtomic writes data to a temporary file in the cache directory and
// renames it to p, so readers see the old file or the new one, never a part.
func (c *FileCache) writeAtomic(p string, data []byte) (err error) {
	tmp, err := os.CreateTemp(c.dir, ".crl-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("crl cache: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("crl cache: write: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("crl cache: sync: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("crl cache: close: %w", err)
	}
	if err = os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("crl cache: %w", err)
	}
	return nil
}

// The file: magic, then the URL, the base CRL and the delta CRL (possibly
// empty), each as a uvarint length and the bytes.
func encodeCRLFile(url string, base, delta []byte) []byte {
	var b bytes.Buffer
	b.Write(crlFileMagic)
	for _, part := range [][]byte{[]byte(url), base, delta} {
		b.Write(binary.AppendUvarint(nil, uint64(len(part))))
		b.Write(part)
	}
	return b.Bytes()
}

func decodeCRLFile(data []byte) (url string, base, delta []byte, err error) {
	rest, ok := bytes.CutPrefix(data, crlFileMagic)
	if !ok {
		return "", nil, nil, errors.New("not a keyward CRL cache file")
	}
	var parts [3][]byte
	limits := [3]uint64{maxCRLURLLength, maxCRLSize, maxCRLSize}
	for i := range parts {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > limits[i] || n > uint64(len(rest)-k) {
			return "", nil, nil, errors.New("corrupt CRL cache file")
		}
		parts[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 || len(parts[1]) == 0 {
		return "", nil, nil, errors.New("corrupt CRL cache file")
	}
	return string(parts[0]), parts[1], parts[2], nil
}

// current reports whether a CRL is still fresh at now: NextUpdate is set
// and not passed (as notation-core-go's fetcher judges cached CRLs).
func current(crl *x509.RevocationList, now time.Time) bool {
	return !crl.NextUpdate.IsZero() && !now.After(crl.NextUpdate)
}

// runFetcher is the CRL fetcher of a Verifier: each URL is fetched once
// per run (concurrent requests for it wait for one download) and reused
// until its NextUpdate, so leaves of one CA share one download. A failed
// download is remembered for the run too, so a dead CRL server costs one
// timeout, not one per chain. Behind it, core's HTTP fetcher and the
// caller's cache.
type runFetcher struct {
	next  corecrl.Fetcher
	cache *cache[string, fetchEntry]
}

type fetchEntry struct {
	bundle *corecrl.Bundle
	err    error
}

func (f *runFetcher) Fetch(ctx context.Context, url string) (*corecrl.Bundle, error) {
	for attempt := 0; ; attempt++ {
		e := f.cache.get(ctx, url, func() (fetchEntry, bool) {
			b, err := f.next.Fetch(ctx, url)
			return fetchEntry{b, err}, !contextErr(ctx)
		})
		if e.err != nil {
			return nil, e.err
		}
		now := time.Now()
		if (current(e.bundle.BaseCRL, now) && (e.bundle.DeltaCRL == nil || current(e.bundle.DeltaCRL, now))) || attempt > 0 {
			return e.bundle, nil
		}
		f.cache.forget(url) // past its NextUpdate: fetch it again
	}
}
