// Package crlbundle reads offline CRL bundles (a file of PEM "X509 CRL"
// blocks, or one DER CRL) and prepares certificate chains so that
// notation-core-go's revocation package judges them against the bundle's
// CRLs, with its own CRL rules, instead of downloading CRLs or asking OCSP
// responders. Both keyward's verification plugin (plugin config
// revocation_crl_bundle) and keyward verify (--crl-bundle) use it.
package crlbundle

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/keyward/keyward/internal/bounded"
)

// MaxSize bounds a bundle file: it may hold many CRLs, each of which
// notation-core-go would download only up to 32 MiB (crl/fetcher.go
// maxCRLSize).
const MaxSize = 64 << 20

// oidDeltaCRLIndicator marks a delta CRL (RFC 5280 5.2.4).
var oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27}

// oidFreshestCRL names the delta CRL of a base CRL (RFC 5280 5.2.6).
var oidFreshestCRL = asn1.ObjectIdentifier{2, 5, 29, 46}

// oidIssuingDistributionPoint scopes a CRL (RFC 5280 5.2.5).
var oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}

// Bundle is the parsed CRLs of a bundle file. It is read-only and safe for
// concurrent use.
type Bundle struct {
	crls []*x509.RevocationList
}

// Read reads and parses the bundle at path: a regular file of at most
// MaxSize bytes. Errors are *Error.
func Read(path string) (*Bundle, error) {
	data, err := bounded.ReadFile(path, MaxSize, "CRL bundle")
	if err != nil {
		return nil, &Error{Path: path, Kind: KindRead, Err: err}
	}
	b, err := Parse(data)
	if err != nil {
		var be *Error
		if errors.As(err, &be) {
			be.Path = path
		}
		return nil, err
	}
	return b, nil
}

// Parse parses bundle bytes: PEM "X509 CRL" blocks (other PEM blocks are
// skipped), or one DER CRL. Errors are *Error without a Path.
func Parse(data []byte) (*Bundle, error) {
	var crls []*x509.RevocationList
	rest := data
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "X509 CRL" {
			continue
		}
		c, err := x509.ParseRevocationList(blk.Bytes)
		if err != nil {
			return nil, &Error{Kind: KindParse, Err: err}
		}
		crls = append(crls, c)
	}
	if len(crls) == 0 {
		c, err := x509.ParseRevocationList(data)
		if err != nil {
			return nil, &Error{Kind: KindEmpty, Err: err}
		}
		crls = append(crls, c)
	}
	return &Bundle{crls: crls}, nil
}

// Len returns how many CRLs the bundle holds.
func (b *Bundle) Len() int { return len(b.crls) }

// For returns the bundle's CRL for cert, whose issuer is issuer, or nil.
// A CRL qualifies when it names cert's issuer (RFC 5280 6.3.3 (b)(1)), its
// signature verifies with issuer's key, it is a complete CRL (delta CRLs
// are not used, nor a base CRL that names one in its Freshest CRL
// extension: the certificate may be revoked in the delta only), and its
// IssuingDistributionPoint, if any, has cert in its scope (RFC 5280 6.3.3
// (b)(2)). Of those, one that is current at now (NextUpdate set and not
// passed, the only validity notation-core-go v1.3.0
// revocation/internal/crl/crl.go validateCRL checks) is preferred, then
// the latest ThisUpdate; an expired CRL is still returned when no other
// qualifies, so that notation-core-go reports it as expired.
func (b *Bundle) For(cert, issuer *x509.Certificate, now time.Time) *x509.RevocationList {
	var best *x509.RevocationList
	bestCurrent := false
	for _, c := range b.crls {
		if !bytes.Equal(c.RawIssuer, cert.RawIssuer) || hasExtension(c, oidDeltaCRLIndicator) || hasExtension(c, oidFreshestCRL) || !scopeCovers(c, cert) || c.CheckSignatureFrom(issuer) != nil {
			continue
		}
		current := !c.NextUpdate.IsZero() && !now.After(c.NextUpdate)
		if best == nil || (current && !bestCurrent) || (current == bestCurrent && c.ThisUpdate.After(best.ThisUpdate)) {
			best, bestCurrent = c, current
		}
	}
	return best
}

// scopeCovers reports whether a CRL's IssuingDistributionPoint (RFC 5280
// 5.2.5), if any, puts cert in its scope (RFC 5280 6.3.3 (b)(2)): a CA
// that partitions its CRLs revokes a certificate in one partition only,
// and notation-core-go v1.3.0 revocation/internal/crl/crl.go ignores the
// extension because it fetches the certificate's own distribution points,
// which a bundle does not. A scope keyward cannot read (a relative name,
// reason partitions, indirect or attribute-certificate CRLs) covers
// nothing, so the certificate is judged as not in the bundle.
func scopeCovers(c *x509.RevocationList, cert *x509.Certificate) bool {
	var ext []byte
	found := false
	for _, e := range c.Extensions {
		if e.Id.Equal(oidIssuingDistributionPoint) {
			ext, found = e.Value, true
		}
	}
	if !found {
		return true
	}
	in := cryptobyte.String(ext)
	var seq, dpName cryptobyte.String
	var hasDP bool
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadOptionalASN1(&dpName, &hasDP, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return false
	}
	flag := func(tag uint8) (bool, bool) {
		var v cryptobyte.String
		var present bool
		if !seq.ReadOptionalASN1(&v, &present, cbasn1.Tag(tag).ContextSpecific()) || (present && len(v) != 1) {
			return false, false
		}
		return present && v[0] != 0, true
	}
	userOnly, ok1 := flag(1)
	caOnly, ok2 := flag(2)
	var reasons cryptobyte.String
	var hasReasons bool
	ok3 := seq.ReadOptionalASN1(&reasons, &hasReasons, cbasn1.Tag(3).ContextSpecific())
	indirect, ok4 := flag(4)
	attrOnly, ok5 := flag(5)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !seq.Empty() || hasReasons || indirect || attrOnly ||
		(userOnly && cert.IsCA) || (caOnly && !cert.IsCA) {
		return false
	}
	if !hasDP || len(cert.CRLDistributionPoints) == 0 {
		// A certificate that names no distribution point is judged
		// against its issuer's bundled CRL whatever its point (the
		// bundle is the caller's statement of what is revoked).
		return true
	}
	var full cryptobyte.String
	var hasFull bool
	if !dpName.ReadOptionalASN1(&full, &hasFull, cbasn1.Tag(0).Constructed().ContextSpecific()) || !hasFull {
		return false
	}
	for !full.Empty() {
		var gn cryptobyte.String
		var tag cbasn1.Tag
		if !full.ReadAnyASN1(&gn, &tag) {
			return false
		}
		if tag == cbasn1.Tag(6).ContextSpecific() && slices.Contains(cert.CRLDistributionPoints, string(gn)) {
			return true
		}
	}
	return false
}

// hasExtension reports whether a CRL carries extension oid.
func hasExtension(c *x509.RevocationList, oid asn1.ObjectIdentifier) bool {
	for _, e := range c.Extensions {
		if e.Id.Equal(oid) {
			return true
		}
	}
	return false
}

// Prepared is a certificate chain made ready for notation-core-go's
// revocation validator: give it Chain, and as CRL fetcher a [Fetcher] over
// CRLs.
type Prepared struct {
	// Chain is the chain, leaf first, with copies of the certificates
	// whose issuer signed a bundled CRL: they name no OCSP responder (core
	// then checks them by CRL) and their distribution points lead to that
	// CRL. With offline, certificates in Uncovered name no server either
	// (core then counts them non-revocable; the caller marks them
	// unknown). The copies keep their DER, so the chain validates as the
	// original.
	Chain []*x509.Certificate
	// CRLs maps each distribution point of Chain's covered certificates
	// to its bundled CRL.
	CRLs map[string]*x509.RevocationList
	// Uncovered lists, leaf first, the positions of certificates below
	// the root that name an OCSP responder or a CRL distribution point
	// while the bundle holds no CRL of their issuer.
	Uncovered []int
}

// Prepare makes chain (leaf first, root last) ready for notation-core-go:
// every certificate below the root whose issuer signed a CRL of the bundle
// (see For) is checked against that CRL alone, including one that names
// no revocation server (the bundle is the caller's statement of what is
// revoked). Without offline the other certificates are left as they are
// (checked over the network); with offline they are stripped of their
// servers and listed in Uncovered.
func (b *Bundle) Prepare(chain []*x509.Certificate, now time.Time, offline bool) *Prepared {
	p := &Prepared{Chain: append([]*x509.Certificate(nil), chain...), CRLs: map[string]*x509.RevocationList{}}
	for i := 0; i+1 < len(chain); i++ {
		crl := b.For(chain[i], chain[i+1], now)
		if crl == nil {
			if offline && (len(chain[i].OCSPServer) > 0 || len(chain[i].CRLDistributionPoints) > 0) {
				c := *chain[i]
				c.OCSPServer, c.CRLDistributionPoints = nil, nil
				p.Chain[i] = &c
				p.Uncovered = append(p.Uncovered, i)
			}
			continue
		}
		c := *chain[i]
		c.OCSPServer = nil
		points := c.CRLDistributionPoints
		for _, u := range points {
			if other, ok := p.CRLs[u]; ok && other != crl {
				points = nil // another certificate's point: one of its own
				break
			}
		}
		if len(points) == 0 {
			// core finds CRLs through the distribution points: give the
			// certificate one that never leaves the process.
			points = []string{fmt.Sprintf("crl-bundle:certificate-%d", i+1)}
		}
		c.CRLDistributionPoints = points
		for _, u := range points {
			p.CRLs[u] = crl
		}
		p.Chain[i] = &c
	}
	return p
}

// Fetcher is a notation-core-go crl.Fetcher over prepared CRLs: a URL in
// CRLs is answered from it; any other goes to Next, or fails when Next is
// nil.
type Fetcher struct {
	CRLs map[string]*x509.RevocationList
	Next corecrl.Fetcher
}

var _ corecrl.Fetcher = (*Fetcher)(nil)

// Fetch returns the CRL for url.
func (f *Fetcher) Fetch(ctx context.Context, url string) (*corecrl.Bundle, error) {
	if c, ok := f.CRLs[url]; ok {
		return &corecrl.Bundle{BaseCRL: c}, nil
	}
	if f.Next == nil {
		return nil, fmt.Errorf("CRL distribution point %q is not served from the offline CRL bundle", url)
	}
	return f.Next.Fetch(ctx, url)
}
