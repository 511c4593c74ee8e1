package verify

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"sync"
)

// certDescriptions describes certificates for results and messages, once
// per certificate in the life of a Verifier: the signatures of a run are
// made by a few signers, and rendering a certificate's names (RFC 2253
// strings) and thumbprints costs more than any lookup. Entries are keyed by
// the DER encoding, so equal bytes share one description. The number of
// entries is bounded: when full, the map is emptied.
type certDescriptions struct {
	mu  sync.Mutex
	max int
	m   map[string]*Certificate
}

func newCertDescriptions(max int) *certDescriptions {
	return &certDescriptions{max: max, m: make(map[string]*Certificate)}
}

// of returns the description of c. The result is shared: callers copy it
// and never change it.
func (d *certDescriptions) of(c *x509.Certificate) *Certificate {
	d.mu.Lock()
	desc, ok := d.m[string(c.Raw)] // no allocation for the lookup
	d.mu.Unlock()
	if ok {
		return desc
	}
	desc = describeCertificate(c)
	d.mu.Lock()
	if len(d.m) >= d.max {
		clear(d.m)
	}
	d.m[string(c.Raw)] = desc
	d.mu.Unlock()
	return desc
}

// subject is c's subject in RFC 2253 form, as notation renders it
// (pkix.Name.String).
func (d *certDescriptions) subject(c *x509.Certificate) string { return d.of(c).Subject }

// describeCertificate describes c as results report it.
func describeCertificate(c *x509.Certificate) *Certificate {
	s256, s1 := sha256.Sum256(c.Raw), sha1.Sum(c.Raw)
	return &Certificate{
		Subject:      c.Subject.String(),
		Issuer:       c.Issuer.String(),
		SerialNumber: c.SerialNumber.Text(16),
		NotBefore:    c.NotBefore,
		NotAfter:     c.NotAfter,
		SHA256:       hex.EncodeToString(s256[:]),
		SHA1:         hex.EncodeToString(s1[:]),
	}
}
