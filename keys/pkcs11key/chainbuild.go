package pkcs11key

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"sort"
	"time"

	"github.com/keyward/keyward/keys"
)

// certObject is an X.509 certificate object of a token, or a certificate of
// a ca_certs bundle (handle-less).
type certObject struct {
	id    []byte
	label string
	cert  *x509.Certificate
}

// pickLeaf chooses the leaf among the certificate objects that carry the
// key's id (or label): one that certifies pub, preferring one valid at now
// and then the newest. When none certifies pub the first is returned, so
// that keys.CheckChain explains the mismatch.
func pickLeaf(pub crypto.PublicKey, cands []certObject, now time.Time) certObject {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	var mine []certObject
	if k, ok := pub.(equaler); ok {
		for _, c := range cands {
			if k.Equal(c.cert.PublicKey) {
				mine = append(mine, c)
			}
		}
	}
	if len(mine) == 0 {
		return cands[0]
	}
	sort.SliceStable(mine, func(i, j int) bool {
		vi, vj := validAt(mine[i].cert, now), validAt(mine[j].cert, now)
		if vi != vj {
			return vi
		}
		return mine[i].cert.NotBefore.After(mine[j].cert.NotBefore)
	})
	return mine[0]
}

func validAt(c *x509.Certificate, now time.Time) bool {
	return !now.Before(c.NotBefore) && !now.After(c.NotAfter)
}

// issuerFinder returns the candidate issuers of a certificate (their subject
// is its issuer); it may read the token.
type issuerFinder func(c *x509.Certificate) ([]*x509.Certificate, error)

// buildChain walks from leaf up to a self-issued root, taking each issuer
// from find. It matches issuers by name and checks a signature only to
// choose between several certificates of one name (a renewed CA): the
// caller's keys.CheckChain verifies every signature of the result, and ECDSA
// P-384 verifications cost a millisecond each in a process that runs once.
// When not even an issuer's name is found, the error says where to put it.
func buildChain(leaf *x509.Certificate, find issuerFinder, now time.Time, where string) ([]*x509.Certificate, error) {
	chain := []*x509.Certificate{leaf}
	for cur := leaf; !bytes.Equal(cur.RawIssuer, cur.RawSubject); {
		if len(chain) >= maxChainLength {
			return nil, invalidf("the certificate chain from %s is longer than %d certificates: check for an issuer loop", where, maxChainLength)
		}
		found, err := find(cur)
		if err != nil {
			return nil, err
		}
		var cands []*x509.Certificate
		for _, c := range found {
			if bytes.Equal(c.RawSubject, cur.RawIssuer) && !inChain(chain, c) {
				cands = append(cands, c)
			}
		}
		var next *x509.Certificate
		switch len(cands) {
		case 0:
		case 1:
			next = cands[0]
		default:
			for _, c := range cands {
				if signedBy(cur, c) && (next == nil || validAt(c, now) && !validAt(next, now)) {
					next = c
				}
			}
		}
		if next == nil {
			return nil, invalidf("no issuer certificate of %q (issuer %q) was found in %s: store the intermediate and root certificates on the token (e.g. pkcs11-tool --write-object ca.der --type cert --label <name>) or set plugin config %s=<PEM bundle of the intermediates and the root>",
				cur.Subject.String(), cur.Issuer.String(), where, ConfigCACerts)
		}
		chain = append(chain, next)
		cur = next
	}
	return chain, nil
}

func inChain(chain []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range chain {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// signedBy reports whether issuer's name and key signed c. Like
// keys.CheckChain it does not require issuer to be a CA here, so that the
// chain check can say what is wrong with it.
func signedBy(c, issuer *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, issuer.RawSubject) &&
		issuer.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// readCACerts reads the ca_certs bundle.
func readCACerts(path string) ([]*x509.Certificate, error) {
	data, err := keys.ReadFile(ConfigCACerts+" file", path, maxCAFileSize, false)
	if err != nil {
		return nil, err
	}
	return keys.ParseCertificatesPEM(data, fmt.Sprintf("%s file %q", ConfigCACerts, path))
}
