package keys

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// ChainCache remembers certificate chains whose signatures [CheckChain]
// verified, one empty file per chain named by the SHA-256 of the chain's
// DER, so that the next plugin process signing with the same chain skips
// the signature checks: with a P-384 or RSA CA, verifying them in a fresh
// process costs several milliseconds of every notation sign.
//
// Everything else CheckChain checks (order by name, key match, usages,
// validity at this instant) is still checked every time. A forged entry can
// only skip checks that notation repeats itself (RAW mode) and that
// notation-core-go repeats when keyward builds an envelope, so the cache
// changes where a broken chain is reported, never whether it is signed into
// a valid signature.
type ChainCache struct {
	dir string
}

// NewChainCache returns a cache in dir; an empty dir disables it.
func NewChainCache(dir string) *ChainCache {
	if dir == "" {
		return nil
	}
	return &ChainCache{dir: dir}
}

func chainID(chain []*x509.Certificate) string {
	h := sha256.New()
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// verified reports whether the chain's signatures were verified before.
func (c *ChainCache) verified(chain []*x509.Certificate) bool {
	if c == nil {
		return false
	}
	fi, err := os.Lstat(filepath.Join(c.dir, chainID(chain)))
	return err == nil && fi.Mode().IsRegular()
}

// remember records a chain whose signatures verified; failures are ignored:
// the cache only saves time.
func (c *ChainCache) remember(chain []*x509.Certificate) {
	if c == nil {
		return
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(c.dir, chainID(chain)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return
	}
	if f != nil {
		f.Close()
	}
}
