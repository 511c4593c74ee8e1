package testpki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// CRL reason codes (RFC 5280 5.3.1) for [CRLServer.RevokeWithReason].
const (
	ReasonUnspecified     = 0
	ReasonKeyCompromise   = 1
	ReasonCertificateHold = 6
	ReasonRemoveFromCRL   = 8
)

var (
	oidFreshestCRL       = asn1.ObjectIdentifier{2, 5, 29, 46} // RFC 5280 4.2.1.15
	oidDeltaCRLIndicator = asn1.ObjectIdentifier{2, 5, 29, 27} // RFC 5280 5.2.4
)

// CRLServer serves the CRL of one CA over HTTP on 127.0.0.1. Each GET makes
// a fresh CRL signed by the CA (x509.CreateRevocationList) with a higher CRL
// number, ThisUpdate a minute ago and NextUpdate an hour ahead unless
// changed. With [CRLWithDelta] the base CRL points at a delta CRL (RFC 5280
// 5.2.6 Freshest CRL) served at [CRLServer.DeltaURL].
//
// notation caches CRLs in {XDG_CACHE_HOME}/notation/crl until their
// NextUpdate, so a change made after notation fetched the CRL is seen only
// with a fresh cache directory.
type CRLServer struct {
	srv    *server
	issuer *Cert
	delta  bool

	mu         sync.Mutex
	base       []x509.RevocationListEntry
	deltaList  []x509.RevocationListEntry
	number     int64
	nextUpdate time.Duration

	baseHits, deltaHits atomic.Int64
}

// CRLOption configures [StartCRL].
type CRLOption func(*crlConfig)

type crlConfig struct {
	nextUpdate time.Duration
	delta      bool
}

// CRLNextUpdate sets how far after the time it is served each CRL's
// NextUpdate lies (default one hour).
func CRLNextUpdate(d time.Duration) CRLOption { return func(c *crlConfig) { c.nextUpdate = d } }

// CRLExpired serves CRLs whose NextUpdate passed an hour ago, which
// notation-core-go rejects ("expired CRL").
func CRLExpired() CRLOption { return CRLNextUpdate(-time.Hour) }

// CRLWithDelta makes the base CRL carry a Freshest CRL extension naming
// [CRLServer.DeltaURL], where a delta CRL (with a critical Delta CRL
// Indicator) lists the serials given to [CRLServer.RevokeInDelta].
func CRLWithDelta() CRLOption { return func(c *crlConfig) { c.delta = true } }

// StartCRL starts serving the CRLs of issuer; it stops when the test ends.
// issuer needs its private key and the cRLSign key usage.
func StartCRL(t CleanupTB, issuer *Cert, opts ...CRLOption) *CRLServer {
	t.Helper()
	if issuer.Key == nil {
		t.Fatal("testpki: a CRL server needs the issuer's private key")
	}
	cfg := crlConfig{nextUpdate: time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	c := &CRLServer{issuer: issuer, delta: cfg.delta, nextUpdate: cfg.nextUpdate}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ca.crl", func(w http.ResponseWriter, r *http.Request) {
		c.baseHits.Add(1)
		if !c.srv.refuse(w, r) {
			c.write(w, false)
		}
	})
	mux.HandleFunc("GET /delta.crl", func(w http.ResponseWriter, r *http.Request) {
		c.deltaHits.Add(1)
		if c.srv.refuse(w, r) {
			return
		}
		if !c.delta {
			http.NotFound(w, r)
			return
		}
		c.write(w, true)
	})
	c.srv = startServer(t, mux)
	// Build one CRL now so that a CA unfit to sign CRLs fails here.
	if _, err := c.CRL(false); err != nil {
		t.Fatalf("testpki: create CRL: %v", err)
	}
	return c
}

// URL is the address of the base CRL, for [WithCRL].
func (c *CRLServer) URL() string { return c.srv.base + "/ca.crl" }

// DeltaURL is the address of the delta CRL, for [WithFreshestCRL]; it
// answers 404 Not Found unless the server was started with [CRLWithDelta].
func (c *CRLServer) DeltaURL() string { return c.srv.base + "/delta.crl" }

// Revoke lists serial in the base CRL as revoked at at, reason
// unspecified (the reasonCode entry extension is then omitted).
func (c *CRLServer) Revoke(serial *big.Int, at time.Time) {
	c.RevokeWithReason(serial, at, ReasonUnspecified)
}

// RevokeWithReason lists serial in the base CRL with an RFC 5280 reason
// code; [ReasonCertificateHold] counts as revoked for notation unless a
// later [ReasonRemoveFromCRL] entry for the same serial supersedes it.
func (c *CRLServer) RevokeWithReason(serial *big.Int, at time.Time, reason int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base = append(c.base, entry(serial, at, reason))
}

// RevokeInDelta lists serial as revoked in the delta CRL only.
func (c *CRLServer) RevokeInDelta(serial *big.Int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deltaList = append(c.deltaList, entry(serial, at, ReasonUnspecified))
}

// SetDelay makes the server wait d before answering each request, to
// exercise client timeouts (notation: 2 s for OCSP, 5 s for CRLs, 15 s for
// timestamps); 0 answers at once.
func (c *CRLServer) SetDelay(d time.Duration) { c.srv.delay.Store(int64(d)) }

// SetDown makes every request fail with 500 Internal Server Error while down
// is true; notation then reports "revocation status is unknown".
func (c *CRLServer) SetDown(down bool) { c.srv.down.Store(down) }

// SetNextUpdate changes how far after the time it is served each CRL's
// NextUpdate lies; a negative d serves expired CRLs.
func (c *CRLServer) SetNextUpdate(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nextUpdate = d
}

// Requests returns how many times the base and the delta CRL were
// requested, including requests refused while down.
func (c *CRLServer) Requests() (base, delta int) {
	return int(c.baseHits.Load()), int(c.deltaHits.Load())
}

// CRL makes a DER CRL as the server would serve it now: the base CRL, or
// with delta the delta CRL.
func (c *CRLServer) CRL(delta bool) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.number++
	this, next := updateTimes(c.nextUpdate)
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(c.number),
		ThisUpdate: this,
		NextUpdate: next,
	}
	switch {
	case delta:
		tmpl.RevokedCertificateEntries = append([]x509.RevocationListEntry(nil), c.deltaList...)
		// The base CRL numbers start at 1, so a delta relative to base 1
		// applies to every base this server serves; its own number is
		// higher than that of any base fetched before it (RFC 5280 5.2.4).
		ind, err := asn1.Marshal(1)
		if err != nil {
			return nil, err
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidDeltaCRLIndicator, Critical: true, Value: ind}}
	default:
		tmpl.RevokedCertificateEntries = append([]x509.RevocationListEntry(nil), c.base...)
		if c.delta {
			ext, err := distributionPoints(oidFreshestCRL, c.DeltaURL())
			if err != nil {
				return nil, err
			}
			tmpl.ExtraExtensions = []pkix.Extension{ext}
		}
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, c.issuer.Cert, c.issuer.Key)
}

func (c *CRLServer) write(w http.ResponseWriter, delta bool) {
	der, err := c.CRL(delta)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	_, _ = w.Write(der)
}

// updateTimes returns ThisUpdate a minute ago and NextUpdate d from now;
// for a NextUpdate in the past ThisUpdate moves an hour before it.
func updateTimes(d time.Duration) (this, next time.Time) {
	now := time.Now()
	this, next = now.Add(-time.Minute), now.Add(d)
	if !next.After(this) {
		this = next.Add(-time.Hour)
	}
	return this, next
}

func entry(serial *big.Int, at time.Time, reason int) x509.RevocationListEntry {
	return x509.RevocationListEntry{
		SerialNumber:   new(big.Int).Set(serial),
		RevocationTime: at.UTC(),
		ReasonCode:     reason,
	}
}

// WithFreshestCRL adds the Freshest CRL extension (RFC 5280 4.2.1.15) naming
// delta CRL URLs to the certificate; notation-core-go then requires a delta
// CRL for it.
func WithFreshestCRL(urls ...string) Option {
	return func(c *config) {
		ext, err := distributionPoints(oidFreshestCRL, urls...)
		if err != nil {
			panic("testpki: encode Freshest CRL: " + err.Error()) // only on an encoder bug
		}
		c.tmpl.ExtraExtensions = append(c.tmpl.ExtraExtensions, ext)
	}
}

// distributionPoints encodes CRLDistributionPoints syntax (RFC 5280
// 4.2.1.13), which Freshest CRL shares: one DistributionPoint whose
// distributionPoint is a fullName of URIs.
func distributionPoints(id asn1.ObjectIdentifier, urls ...string) (pkix.Extension, error) {
	type distributionPointName struct {
		FullName []asn1.RawValue `asn1:"optional,tag:0"`
	}
	type distributionPoint struct {
		Name distributionPointName `asn1:"optional,tag:0"`
	}
	var names []asn1.RawValue
	for _, u := range urls {
		// GeneralName uniformResourceIdentifier [6] IA5String.
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(u)})
	}
	val, err := asn1.Marshal([]distributionPoint{{Name: distributionPointName{FullName: names}}})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: id, Value: val}, nil
}
