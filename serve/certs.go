package serve

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"

	"github.com/keyward/keyward/internal/bounded"
)

// maxPEMFile bounds the certificate and key files.
const maxPEMFile = 1 << 20

// certReloader serves the certificate of two PEM files and reads them again
// when their contents change: cert-manager (or anyone) may rotate them
// without a restart. Each handshake reads both files (a few KiB) and parses
// them only when the bytes differ from those last parsed. A pair that does
// not load (a rotation half done: the new certificate with the old key) is
// logged and the last good certificate kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu              sync.Mutex
	certPEM, keyPEM []byte
	cert            *tls.Certificate
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *certReloader) get() (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	certPEM, err := bounded.ReadFile(r.certFile, maxPEMFile, "tls.certFile "+r.certFile)
	if err == nil {
		var keyPEM []byte
		if keyPEM, err = bounded.ReadFile(r.keyFile, maxPEMFile, "tls.keyFile "+r.keyFile); err == nil {
			if r.cert != nil && bytes.Equal(certPEM, r.certPEM) && bytes.Equal(keyPEM, r.keyPEM) {
				return r.cert, nil
			}
			var c tls.Certificate
			if c, err = tls.X509KeyPair(certPEM, keyPEM); err == nil {
				if r.cert != nil {
					r.log.Info("server certificate reloaded", "certFile", r.certFile)
				}
				r.cert, r.certPEM, r.keyPEM = &c, certPEM, keyPEM
				return r.cert, nil
			}
			err = fmt.Errorf("load tls.certFile %s and tls.keyFile %s: %w", r.certFile, r.keyFile, err)
		}
	}
	if r.cert == nil {
		return nil, err
	}
	r.log.Warn("server certificate not reloaded; the previous one is served", "error", err)
	return r.cert, nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() }
