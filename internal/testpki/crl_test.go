package testpki

import (
	"crypto/x509"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
)

func TestCRLWithNotationCore(t *testing.T) {
	root := Root(t, "crl root")
	tests := []struct {
		name     string
		opts     []CRLOption
		leafOpts func(c *CRLServer) []Option
		set      func(c *CRLServer, leaf *x509.Certificate)
		want     result.Result
		errPart  string
		delta    int // delta CRL requests expected
	}{
		{name: "good", want: result.ResultOK},
		{name: "other serial revoked", set: func(c *CRLServer, l *x509.Certificate) {
			c.Revoke(nextSerial(), time.Now())
		}, want: result.ResultOK},
		{name: "revoked", set: func(c *CRLServer, l *x509.Certificate) { c.Revoke(l.SerialNumber, time.Now().Add(-time.Minute)) },
			want: result.ResultRevoked},
		{name: "revoked key compromise", set: func(c *CRLServer, l *x509.Certificate) {
			c.RevokeWithReason(l.SerialNumber, time.Now(), ReasonKeyCompromise)
		}, want: result.ResultRevoked},
		{name: "on hold", set: func(c *CRLServer, l *x509.Certificate) {
			c.RevokeWithReason(l.SerialNumber, time.Now().Add(-time.Hour), ReasonCertificateHold)
		}, want: result.ResultRevoked},
		{name: "hold released", set: func(c *CRLServer, l *x509.Certificate) {
			c.RevokeWithReason(l.SerialNumber, time.Now().Add(-time.Hour), ReasonCertificateHold)
			c.RevokeWithReason(l.SerialNumber, time.Now().Add(-time.Minute), ReasonRemoveFromCRL)
		}, want: result.ResultOK},
		{name: "down", set: func(c *CRLServer, _ *x509.Certificate) { c.SetDown(true) },
			want: result.ResultUnknown, errPart: "failed to download with status code: 500"},
		{name: "expired", opts: []CRLOption{CRLExpired()},
			want: result.ResultUnknown, errPart: "expired CRL"},
		{name: "expired later", set: func(c *CRLServer, _ *x509.Certificate) { c.SetNextUpdate(-time.Second) },
			want: result.ResultUnknown, errPart: "expired CRL"},
		{name: "delta good", opts: []CRLOption{CRLWithDelta()}, want: result.ResultOK, delta: 1},
		{name: "revoked in delta", opts: []CRLOption{CRLWithDelta()},
			set:  func(c *CRLServer, l *x509.Certificate) { c.RevokeInDelta(l.SerialNumber, time.Now()) },
			want: result.ResultRevoked, delta: 1},
		{name: "delta down", opts: []CRLOption{CRLWithDelta()},
			set:  func(c *CRLServer, _ *x509.Certificate) { c.SetDown(true) },
			want: result.ResultUnknown, errPart: "status code: 500"},
		{name: "freshest CRL in cert, no delta served",
			leafOpts: func(c *CRLServer) []Option { return []Option{WithFreshestCRL(c.DeltaURL())} },
			want:     result.ResultUnknown, errPart: "freshest CRL from certificate extension is not supported"},
		{name: "freshest CRL in cert, delta served", opts: []CRLOption{CRLWithDelta()},
			leafOpts: func(c *CRLServer) []Option { return []Option{WithFreshestCRL(c.DeltaURL())} },
			want:     result.ResultOK, delta: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := StartCRL(t, root, tt.opts...)
			opts := []Option{WithCRL(c.URL())}
			if tt.leafOpts != nil {
				opts = append(opts, tt.leafOpts(c)...)
			}
			leaf := root.Leaf(t, "crl leaf", opts...)
			if tt.set != nil {
				tt.set(c, leaf.Cert)
			}
			res := checkRevocation(t, purpose.CodeSigning, leaf, root)
			assertResult(t, res[0], tt.want, result.RevocationMethodCRL, tt.errPart)
			if base, delta := c.Requests(); base != 1 || delta != tt.delta {
				t.Errorf("requests: %d base, %d delta; want 1 and %d", base, delta, tt.delta)
			}
		})
	}
}

// TestCRLContent checks what the server serves: DER signed by the issuer,
// increasing CRL numbers, the revoked entries, the delta CRL extensions.
func TestCRLContent(t *testing.T) {
	root := Root(t, "crl root")
	c := StartCRL(t, root, CRLWithDelta())
	revokedAt := time.Now().Add(-time.Hour).Truncate(time.Second)
	serial := nextSerial()
	c.Revoke(serial, revokedAt)

	get := func(url string) *x509.RevocationList {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		der, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
			t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		crl, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := crl.CheckSignatureFrom(root.Cert); err != nil {
			t.Fatalf("CRL signature: %v", err)
		}
		if !crl.NextUpdate.After(time.Now()) || crl.ThisUpdate.After(time.Now()) {
			t.Errorf("ThisUpdate %v, NextUpdate %v: want a current CRL", crl.ThisUpdate, crl.NextUpdate)
		}
		return crl
	}
	first, second := get(c.URL()), get(c.URL())
	if second.Number.Cmp(first.Number) <= 0 {
		t.Errorf("CRL numbers %v then %v: want increasing", first.Number, second.Number)
	}
	if len(first.RevokedCertificateEntries) != 1 || first.RevokedCertificateEntries[0].SerialNumber.Cmp(serial) != 0 ||
		!first.RevokedCertificateEntries[0].RevocationTime.Equal(revokedAt) {
		t.Errorf("entries %+v, want serial %v revoked at %v", first.RevokedCertificateEntries, serial, revokedAt)
	}
	var freshest bool
	for _, e := range first.Extensions {
		freshest = freshest || e.Id.Equal(oidFreshestCRL)
	}
	if !freshest {
		t.Error("base CRL has no Freshest CRL extension")
	}
	delta := get(c.DeltaURL())
	var indicator bool
	for _, e := range delta.Extensions {
		indicator = indicator || e.Id.Equal(oidDeltaCRLIndicator) && e.Critical
	}
	if !indicator || delta.Number.Cmp(second.Number) <= 0 {
		t.Errorf("delta CRL: critical indicator %v, number %v after base %v", indicator, delta.Number, second.Number)
	}
}

// TestOCSPFallbackToCRL: when OCSP cannot answer, notation-core-go asks the
// CRL, so a certificate with both reports the CRL's verdict.
func TestOCSPFallbackToCRL(t *testing.T) {
	root := Root(t, "fallback root")
	o := StartOCSP(t, root)
	c := StartCRL(t, root)
	leaf := root.Leaf(t, "fallback leaf", WithOCSP(o.URL()), WithCRL(c.URL()))

	res := checkRevocation(t, purpose.CodeSigning, leaf, root)
	assertResult(t, res[0], result.ResultOK, result.RevocationMethodOCSP, "")
	if base, _ := c.Requests(); base != 0 {
		t.Errorf("CRL fetched %d times while OCSP answered", base)
	}

	o.SetDown(true)
	c.Revoke(leaf.Cert.SerialNumber, time.Now())
	res = checkRevocation(t, purpose.CodeSigning, leaf, root)
	assertResult(t, res[0], result.ResultRevoked, result.RevocationMethodOCSPFallbackCRL, "status code 500")

	c.SetDown(true)
	res = checkRevocation(t, purpose.CodeSigning, leaf, root)
	assertResult(t, res[0], result.ResultUnknown, result.RevocationMethodOCSPFallbackCRL, "failed to download with status code: 500")
}
