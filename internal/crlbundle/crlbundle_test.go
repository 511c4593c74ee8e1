package crlbundle_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/crlbundle"
	"github.com/keyward/keyward/internal/testpki"
)

// makeCRL signs a CRL of issuer with thisUpdate and nextUpdate offsets
// from now; delta marks it a delta CRL.
func makeCRL(t *testing.T, issuer *testpki.Cert, number int64, this, next time.Duration, delta bool) []byte {
	t.Helper()
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(this), NextUpdate: now.Add(next)}
	if delta {
		v, err := asn1.Marshal(1)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 27}, Critical: true, Value: v}}
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Cert, issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func pemOf(ders ...[]byte) []byte {
	var b bytes.Buffer
	for _, d := range ders {
		_ = pem.Encode(&b, &pem.Block{Type: "X509 CRL", Bytes: d})
	}
	return b.Bytes()
}

func TestParse(t *testing.T) {
	ca := testpki.Root(t, "crlbundle-parse-root")
	der := makeCRL(t, ca, 1, -time.Hour, time.Hour, false)
	for _, tc := range []struct {
		name string
		data []byte
		n    int
		kind crlbundle.ErrorKind
	}{
		{"one DER CRL", der, 1, ""},
		{"PEM CRLs among certificates", append(testpki.CertsPEM(ca.Cert), pemOf(der, der)...), 2, ""},
		{"garbage", []byte("garbage"), 0, crlbundle.KindEmpty},
		{"only a certificate", testpki.CertsPEM(ca.Cert), 0, crlbundle.KindEmpty},
		{"a bad CRL block", pemOf(der, []byte("not DER")), 0, crlbundle.KindParse},
	} {
		b, err := crlbundle.Parse(tc.data)
		var be *crlbundle.Error
		switch {
		case tc.kind == "" && (err != nil || b.Len() != tc.n):
			t.Errorf("%s: Parse = %v, %v; want %d CRLs", tc.name, b, err, tc.n)
		case tc.kind != "" && (!errors.As(err, &be) || be.Kind != tc.kind):
			t.Errorf("%s: Parse error %v, want kind %s", tc.name, err, tc.kind)
		}
	}
}

// TestForAndPrepare: the CRL chosen names the issuer and verifies with its
// key, is complete, current before expired, newest first; Prepare points
// covered certificates at it and, offline, strips the servers of the
// others and lists them.
func TestForAndPrepare(t *testing.T) {
	root := testpki.Root(t, "crlbundle-root")
	inter := root.Intermediate(t, "crlbundle-inter", testpki.WithOCSP("http://ocsp.example/"))
	impostor := testpki.Root(t, "crlbundle-impostor", testpki.WithSubject(inter.Cert.Subject))
	leaf := inter.Leaf(t, "crlbundle-leaf", testpki.WithOCSP("http://ocsp.example/"), testpki.WithCRL("http://crl.example/inter.crl"))
	bare := inter.Leaf(t, "crlbundle-bare-leaf")
	expired := makeCRL(t, inter, 1, -3*time.Hour, -2*time.Hour, false)
	older := makeCRL(t, inter, 2, -2*time.Hour, time.Hour, false)
	newest := makeCRL(t, inter, 3, -time.Hour, time.Hour, false)
	newerDelta := makeCRL(t, inter, 4, -time.Minute, time.Hour, true)
	foreign := makeCRL(t, impostor, 5, -time.Second, time.Hour, false)
	now := time.Now()
	number := func(c *x509.RevocationList) int64 {
		if c == nil {
			return 0
		}
		return c.Number.Int64()
	}
	for _, tc := range []struct {
		name string
		crls [][]byte
		want int64
	}{
		{"newest current", [][]byte{older, newest, expired, newerDelta, foreign}, 3},
		{"current before expired", [][]byte{expired, older}, 2},
		{"expired when alone", [][]byte{expired, foreign}, 1},
		{"none of another key or a delta", [][]byte{foreign, newerDelta}, 0},
	} {
		b, err := crlbundle.Parse(pemOf(tc.crls...))
		if err != nil {
			t.Fatal(err)
		}
		if got := number(b.For(leaf.Cert, inter.Cert, now)); got != tc.want {
			t.Errorf("%s: For chose CRL number %d, want %d", tc.name, got, tc.want)
		}
	}

	b, err := crlbundle.Parse(pemOf(newest))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		leaf    *testpki.Cert
		offline bool
	}{{leaf, false}, {leaf, true}, {bare, true}} {
		chain := testpki.Chain(tc.leaf, inter, root)
		p := b.Prepare(chain, now, tc.offline)
		c := p.Chain[0]
		if len(c.OCSPServer) != 0 || len(c.CRLDistributionPoints) == 0 || !bytes.Equal(c.Raw, tc.leaf.Cert.Raw) {
			t.Fatalf("%s: prepared leaf names OCSP %v and CRL %v", tc.leaf.Cert.Subject.CommonName, c.OCSPServer, c.CRLDistributionPoints)
		}
		f := &crlbundle.Fetcher{CRLs: p.CRLs}
		for _, u := range c.CRLDistributionPoints {
			got, err := f.Fetch(context.Background(), u)
			if err != nil || number(got.BaseCRL) != 3 {
				t.Errorf("Fetch(%s) = %v, %v; want CRL number 3", u, got, err)
			}
		}
		// The intermediate names OCSP and the root has no CRL in the bundle.
		if tc.offline != (len(p.Uncovered) == 1 && p.Uncovered[0] == 1) || tc.offline != (len(p.Chain[1].OCSPServer) == 0) {
			t.Errorf("offline %v: uncovered %v, intermediate OCSP %v", tc.offline, p.Uncovered, p.Chain[1].OCSPServer)
		}
		if len(inter.Cert.OCSPServer) == 0 || len(tc.leaf.Cert.OCSPServer)+len(tc.leaf.Cert.CRLDistributionPoints) > 0 && len(chain[0].OCSPServer) == 0 {
			t.Error("Prepare changed the caller's certificates")
		}
	}
	if _, err := (&crlbundle.Fetcher{}).Fetch(context.Background(), "http://crl.example/other.crl"); err == nil {
		t.Error("Fetch of a URL outside the bundle without Next succeeded")
	}
}

// idpCRL signs a CRL of issuer carrying an IssuingDistributionPoint
// (RFC 5280 5.2.5) whose fullName is uri, restricted to CA or user
// certificates when caOnly or userOnly, that revokes serials.
func idpCRL(t *testing.T, issuer *testpki.Cert, number int64, this time.Duration, uri string, userOnly, caOnly bool, serials ...*big.Int) []byte {
	t.Helper()
	gn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: gn})
	dp, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: full})
	body := dp
	if userOnly {
		b, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte{0xff}})
		body = append(body, b...)
	}
	if caOnly {
		b, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, Bytes: []byte{0xff}})
		body = append(body, b...)
	}
	idp, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: now.Add(this), NextUpdate: now.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 28}, Critical: true, Value: idp}}}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: now.Add(-time.Hour)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, issuer.Cert, issuer.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestForPartitionedCRLs: a CA that partitions its CRLs (RFC 5280 5.2.5
// IssuingDistributionPoint: by distribution point, or CA and user
// certificates apart) revokes a certificate in one partition only; the
// newest CRL of the issuer may be another partition, and choosing it would
// report a revoked certificate good (notation-core-go does not read the
// extension, it relies on fetching the certificate's own points).
func TestForPartitionedCRLs(t *testing.T) {
	root := testpki.Root(t, "crlbundle-idp-root")
	inter := root.Intermediate(t, "crlbundle-idp-inter")
	leaf := inter.Leaf(t, "crlbundle-idp-leaf", testpki.WithCRL("http://crl.example/shard-1.crl"))
	bare := inter.Leaf(t, "crlbundle-idp-bare-leaf")
	serial := leaf.Cert.SerialNumber
	shard1 := idpCRL(t, inter, 1, -2*time.Hour, "http://crl.example/shard-1.crl", false, false, serial)
	shard2 := idpCRL(t, inter, 2, -time.Hour, "http://crl.example/shard-2.crl", false, false)
	caOnly := idpCRL(t, inter, 3, -time.Minute, "http://crl.example/shard-1.crl", false, true)
	users := idpCRL(t, inter, 4, -3*time.Hour, "http://crl.example/shard-1.crl", true, false, serial)
	now := time.Now()
	for _, tc := range []struct {
		name string
		crls [][]byte
		want int64
	}{
		{"the certificate's own shard, not a newer one", [][]byte{shard1, shard2}, 1},
		{"another shard alone", [][]byte{shard2}, 0},
		{"user CRL, not a newer CA-only CRL", [][]byte{users, caOnly}, 4},
		{"CA-only CRL alone", [][]byte{caOnly}, 0},
	} {
		b, err := crlbundle.Parse(pemOf(tc.crls...))
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		if c := b.For(leaf.Cert, inter.Cert, now); c != nil {
			got = c.Number.Int64()
		}
		if got != tc.want {
			t.Errorf("%s: For chose CRL number %d, want %d", tc.name, got, tc.want)
		}
	}
	// A certificate naming no distribution point is judged against a
	// scoped CRL all the same (only CA and user scopes apply to it).
	b, err := crlbundle.Parse(pemOf(shard1, caOnly))
	if err != nil {
		t.Fatal(err)
	}
	if c := b.For(bare.Cert, inter.Cert, now); c == nil || c.Number.Int64() != 1 {
		t.Errorf("a leaf without distribution point: For chose %v, want CRL number 1", c)
	}
}

// TestForBaseNamingDelta: a base CRL whose Freshest CRL extension (RFC
// 5280 5.2.6) names a delta CRL is incomplete alone: a certificate revoked
// since it was issued is listed in the delta only. The bundle does not
// combine base and delta CRLs, so such a base CRL does not answer for the
// certificate (judged then as not in the bundle: unknown offline).
func TestForBaseNamingDelta(t *testing.T) {
	root := testpki.Root(t, "crlbundle-fresh-root")
	inter := root.Intermediate(t, "crlbundle-fresh-inter")
	leaf := inter.Leaf(t, "crlbundle-fresh-leaf", testpki.WithCRL("http://crl.example/base.crl"))
	gn, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte("http://crl.example/delta.crl")})
	full, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: gn})
	name, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: full})
	dp, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: name})
	fresh, _ := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: dp})
	now := time.Now()
	tmpl := &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 46}, Value: fresh}}}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, inter.Cert, inter.Key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := crlbundle.Parse(der)
	if err != nil {
		t.Fatal(err)
	}
	if c := b.For(leaf.Cert, inter.Cert, now); c != nil {
		t.Errorf("For chose base CRL number %d, which names a delta CRL the bundle does not apply", c.Number)
	}
	if p := b.Prepare(testpki.Chain(leaf, inter, root), now, true); len(p.Uncovered) != 1 || p.Uncovered[0] != 0 {
		t.Errorf("offline, the leaf is not listed uncovered: %v", p.Uncovered)
	}
}
