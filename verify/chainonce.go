package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"

	"github.com/notaryproject/notation-core-go/revocation/result"
)

// chainKey identifies a certificate chain: the DER bytes of its
// certificates, in order, each preceded by its length.
func chainKey(chain []*x509.Certificate) string {
	h := sha256.New()
	var n [8]byte
	for _, c := range chain {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	return string(h.Sum(nil))
}

// peek returns the value kept for key, if a computation of it has finished
// and was kept; it never computes nor waits.
func (c *cache[K, V]) peek(key K) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			if e.kept {
				return e.val, true
			}
		default:
		}
	}
	var zero V
	return zero, false
}

// revocationWithoutServers returns the revocation results notation-core-go
// gives a code-signing chain in which no certificate but the root names an
// OCSP responder or a CRL distribution point, without validating the chain
// a second time: only when this Verifier's integrity check has already
// validated the same chain (validateChain) and it passed.
//
// notation-core-go v1.3.0 revocation.ValidateContext first runs
// x509.ValidateCodeSigningCertChain(chain, nil) (revocation/internal/
// x509util.ValidateChain), the very call validateChain makes through
// coreshim.ValidateChain and remembers; then every certificate that
// supports neither OCSP (OCSPServer set) nor CRL (CRLDistributionPoints
// set), and the root whatever it names, gets a non-revocable result with
// one non-revocable server result of unknown method
// (revocation/revocation.go). So the results are these, and the signature
// checks of a second validation of the chain are saved, per chain and run.
func (v *Verifier) revocationWithoutServers(chain []*x509.Certificate) ([]*result.CertRevocationResult, bool) {
	if len(chain) == 0 {
		return nil, false
	}
	for _, c := range chain[:len(chain)-1] {
		if len(c.OCSPServer) > 0 || len(c.CRLDistributionPoints) > 0 {
			return nil, false
		}
	}
	if e, ok := v.chains.peek(chainKey(chain)); !ok || e.err != nil {
		return nil, false
	}
	results := make([]*result.CertRevocationResult, len(chain))
	for i := range results {
		results[i] = &result.CertRevocationResult{
			Result: result.ResultNonRevokable,
			ServerResults: []*result.ServerResult{{
				Result:           result.ResultNonRevokable,
				RevocationMethod: result.RevocationMethodUnknown,
			}},
			RevocationMethod: result.RevocationMethodUnknown,
		}
	}
	return results, true
}
