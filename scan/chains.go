package scan

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"sync"

	"github.com/keyward/keyward/internal/coreshim"
)

// maxChains bounds the certificate chains whose validation a scan
// remembers; beyond, a chain is validated each time.
const maxChains = 4096

// chains remembers, per certificate chain, the outcome of its validation
// (coreshim.ValidateChain: two to three signature checks, the bulk of the
// CPU a scan spends reading Notary Project signers). A registry's thousands
// of signatures are by a few signers: each chain is validated once a scan.
type chains struct {
	mu sync.Mutex
	m  map[string]error
}

// validate is coreshim.ValidateChain, remembered per chain.
func (c *chains) validate(chain []*x509.Certificate) error {
	h := sha256.New()
	var n [8]byte
	for _, cert := range chain {
		binary.BigEndian.PutUint64(n[:], uint64(len(cert.Raw)))
		h.Write(n[:])
		h.Write(cert.Raw)
	}
	key := string(h.Sum(nil))
	c.mu.Lock()
	err, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return err
	}
	err = coreshim.ValidateChain(chain)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]error{}
	}
	if len(c.m) < maxChains {
		c.m[key] = err
	}
	c.mu.Unlock()
	return err
}
