package pkcs11key

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/internal/dirs"
	"github.com/keyward/keyward/keys"
)

// maxCacheEntry bounds a cache file: one public key.
const maxCacheEntry = 16 << 10

// keyCache remembers the public key of each token key id keyward opened for
// signing, so that describe-key (which only reports the key spec) need not
// load the module and open the token: with SoftHSM2 that is most of
// describe-key's time. It lives in $XDG_CACHE_HOME/keyward/pkcs11 (or
// ~/.cache/keyward/pkcs11), one file per module and key id, and holds public
// keys only.
//
// A stale entry cannot make keyward sign wrongly: generate-signature always
// reads the token, checks the key spec notation asks for against the token's
// key and rewrites the entry. At worst, after a key was replaced by one of
// another type under the same id, one signature fails with a key spec
// mismatch and the next succeeds. Deleting the directory is always safe.
type keyCache struct {
	dir string
}

// cache returns the cache of this environment, or nil when neither
// XDG_CACHE_HOME nor HOME is an absolute path.
func (b Backend) cache() *keyCache {
	base := dirs.CacheDir(b.getenv)
	if base == "" {
		return nil
	}
	return &keyCache{dir: filepath.Join(base, "pkcs11")}
}

// cacheName names the entry of a key id and module: a hash of the URI's
// selecting attributes (not its PIN source) and the module's path.
func cacheName(u *URI, modulePath string) string {
	id := *u
	id.ModulePath, id.ModuleName, id.PINSource = "", "", ""
	sum := sha256.Sum256([]byte(modulePath + "\n" + id.String()))
	return hex.EncodeToString(sum[:]) + ".json"
}

type cacheEntry struct {
	Version int    `json:"version"`
	SPKI    []byte `json:"spki"` // DER SubjectPublicKeyInfo
}

// load returns the remembered public key, if there is a valid entry.
func (c *keyCache) load(name string) (crypto.PublicKey, bool) {
	if c == nil {
		return nil, false
	}
	data, ok := c.read(name)
	if !ok {
		return nil, false
	}
	var e cacheEntry
	if json.Unmarshal(data, &e) != nil || e.Version != 1 {
		return nil, false
	}
	pub, err := x509.ParsePKIXPublicKey(e.SPKI)
	if err != nil {
		return nil, false
	}
	return pub, true
}

func (c *keyCache) read(name string) ([]byte, bool) {
	path := filepath.Join(c.dir, name)
	fi, err := os.Lstat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, false
	}
	data, err := keys.ReadFile("cache entry", path, maxCacheEntry, false)
	return data, err == nil
}

// store remembers pub, replacing the file atomically; failures are ignored
// (the cache only saves time).
func (c *keyCache) store(name string, pub crypto.PublicKey) {
	if c == nil {
		return
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return
	}
	data, err := json.Marshal(cacheEntry{Version: 1, SPKI: spki})
	if err != nil {
		return
	}
	if old, ok := c.read(name); ok && bytes.Equal(old, data) {
		return
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return
	}
	tmp, err := os.CreateTemp(c.dir, ".entry-*")
	if err != nil {
		return
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return
	}
	if tmp.Close() != nil {
		return
	}
	_ = os.Rename(tmp.Name(), filepath.Join(c.dir, name))
}
