package verify_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/crlbundle"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

// crlPEM encodes DER CRLs as PEM "X509 CRL" blocks.
func crlPEM(t *testing.T, ders ...[]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, d := range ders {
		if err := pem.Encode(&b, &pem.Block{Type: "X509 CRL", Bytes: d}); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func mustCRL(t *testing.T, s *testpki.CRLServer) []byte {
	t.Helper()
	der, err := s.CRL(false)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestOfflineCRLBundle: with Options.CRLBundle, revocation of the signing
// and timestamping chains is judged from the bundle alone, the responders
// being down and never asked: revoked fails as revoked, good passes, an
// expired CRL or a CRL signed by another key (with the issuer's name)
// leaves the status unknown, and a certificate naming servers the bundle
// has no CRL for is unknown.
func TestOfflineCRLBundle(t *testing.T) {
	f := newFixture(t)
	ocsp := testpki.StartOCSP(t, f.inter)
	crlSrv := testpki.StartCRL(t, f.inter)
	expiredSrv := testpki.StartCRL(t, f.inter, testpki.CRLExpired())
	servers := []testpki.Option{testpki.WithOCSP(ocsp.URL()), testpki.WithCRL(crlSrv.URL())}
	good := f.inter.Leaf(t, "bundle-good-leaf", servers...)
	revoked := f.inter.Leaf(t, "bundle-revoked-leaf", servers...)
	noServers := f.inter.Leaf(t, "bundle-no-servers-leaf")
	revokedNoServers := f.inter.Leaf(t, "bundle-revoked-no-servers-leaf")
	// Another intermediate of the root, of which the bundle has no CRL.
	inter2 := f.root.Intermediate(t, "bundle-intermediate-2", testpki.WithValidity(f.now.Add(-30*24*time.Hour), f.now.Add(30*24*time.Hour)))
	unreachable := inter2.Leaf(t, "bundle-unreachable-leaf", testpki.WithOCSP("http://127.0.0.1:1/ocsp"), testpki.WithCRL("http://127.0.0.1:1/ca.crl"))
	crlSrv.Revoke(revoked.Cert.SerialNumber, f.now.Add(-time.Hour))
	crlSrv.Revoke(revokedNoServers.Cert.SerialNumber, f.now.Add(-time.Hour))
	ocsp.Revoke(revoked.Cert.SerialNumber, f.now.Add(-time.Hour))

	// A CA with the intermediate's name and another key: its CRL revokes
	// the good leaf, and must be ignored (it is in the main bundle, beside
	// the intermediate's own CRL).
	impostor := testpki.Root(t, "bundle-impostor", testpki.WithSubject(f.inter.Cert.Subject))
	if !bytes.Equal(impostor.Cert.RawSubject, f.inter.Cert.RawSubject) {
		t.Fatal("the impostor CA does not have the intermediate's name")
	}
	impostorSrv := testpki.StartCRL(t, impostor)
	impostorSrv.Revoke(good.Cert.SerialNumber, f.now.Add(-time.Hour))

	// The timestamping chain: a TSA whose leaf is revoked by its CA's CRL.
	tsaRoot := testpki.Root(t, "bundle-tsa-root", testpki.WithValidity(f.now.Add(-30*24*time.Hour), f.now.Add(30*24*time.Hour)))
	tsaCRL := testpki.StartCRL(t, tsaRoot)
	tsa := testpki.StartTSA(t, testpki.TSARoot(tsaRoot), testpki.TSALeafOptions(testpki.WithCRL(tsaCRL.URL())))
	tsaCRL.Revoke(tsa.Leaf().Cert.SerialNumber, f.now.Add(-time.Hour))
	f.addStore(t, "tsa", "bundletsa", tsaRoot.Cert)
	day := 24 * time.Hour
	expiredLeaf := f.inter.Leaf(t, "bundle-expired-leaf", testpki.WithValidity(f.now.Add(-10*day), f.now.Add(-day)))

	dir := t.TempDir()
	other := testpki.Root(t, "bundle-unrelated-root")
	unrelated := mustCRL(t, testpki.StartCRL(t, other))
	certBlock := testpki.CertsPEM(other.Cert) // skipped: not an X509 CRL block
	main := testpki.WriteFile(t, dir, "main.pem", append(certBlock, crlPEM(t, unrelated, mustCRL(t, impostorSrv), mustCRL(t, crlSrv), mustCRL(t, tsaCRL))...), 0o644)
	expired := testpki.WriteFile(t, dir, "expired.pem", crlPEM(t, mustCRL(t, expiredSrv)), 0o644)
	impostorOnly := testpki.WriteFile(t, dir, "impostor.der", mustCRL(t, impostorSrv), 0o644)

	for _, s := range []interface{ SetDown(bool) }{ocsp, crlSrv, expiredSrv, impostorSrv, tsaCRL} {
		s.SetDown(true)
	}
	st := f.keywardStatement(t, policyDocument(variant{level: "strict"}, []string{"ca:main", "tsa:bundletsa"}, []string{"*"}, "afterCertExpiry"))
	for _, tc := range []struct {
		name   string
		bundle string
		env    []byte
		check  verify.CheckName // the failed check, "" to pass
		msg    string           // in the failed check's message
		detail string           // in its detail
	}{
		{"good", main, f.sign(t, signSpec{leaf: good}), "", "", ""},
		{"revoked", main, f.sign(t, signSpec{leaf: revoked}), verify.CheckRevocation, `signing certificate with subject "` + revoked.Cert.Subject.String() + `" is revoked`, ""},
		{"no servers, not in a CRL", main, f.sign(t, signSpec{leaf: noServers}), "", "", ""},
		{"no servers, revoked in the bundle", main, f.sign(t, signSpec{leaf: revokedNoServers}), verify.CheckRevocation, "is revoked", ""},
		{"servers the bundle cannot answer for", main, f.sign(t, signSpec{leaf: unreachable, chain: testpki.Chain(unreachable, inter2, f.root)}), verify.CheckRevocation, "revocation status is unknown", "no CRL in the offline CRL bundle is signed by the issuer"},
		{"expired CRL", expired, f.sign(t, signSpec{leaf: good}), verify.CheckRevocation, "revocation status is unknown", "expired CRL"},
		{"CRL of another key", impostorOnly, f.sign(t, signSpec{leaf: good}), verify.CheckRevocation, "revocation status is unknown", "no CRL in the offline CRL bundle"},
		{"revoked TSA", main, f.sign(t, signSpec{leaf: expiredLeaf, signingTime: f.now.Add(-5 * day), tsa: tsa, tsaTime: f.now.Add(-5 * day)}), verify.CheckAuthenticTimestamp, `timestamping certificate with subject "` + tsa.Leaf().Cert.Subject.String() + `" is revoked`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(filepath.Join(f.configDir, "truststore")), CRLBundle: tc.bundle})
			if err != nil {
				t.Fatal(err)
			}
			res := v.Verify(context.Background(), verify.Request{Statement: st, Artifact: f.artifact, Reference: f.reference()}, verify.Envelope{MediaType: mtJWS, Bytes: tc.env})
			if res.Passed != (tc.check == "") || res.FailedCheck != tc.check {
				t.Fatalf("passed %v, failed check %q: %v; want failed check %q", res.Passed, res.FailedCheck, res.Err, tc.check)
			}
			if tc.check == "" {
				if c := res.Check(verify.CheckRevocation); c.Outcome != verify.OutcomePassed {
					t.Fatalf("revocation %+v", c)
				}
				return
			}
			c := res.Check(tc.check)
			if !strings.Contains(c.Message, tc.msg) || !strings.Contains(c.Detail, tc.detail) {
				t.Errorf("check %s = %+v, want a message with %q and a detail with %q", tc.check, c, tc.msg, tc.detail)
			}
		})
	}
	for name, n := range map[string]int{"OCSP": sum(ocsp.Requests()), "CRL": sum(crlSrv.Requests()), "expired CRL": sum(expiredSrv.Requests()),
		"impostor CRL": sum(impostorSrv.Requests()), "TSA CRL": sum(tsaCRL.Requests())} {
		if n != 0 {
			t.Errorf("%d requests to the %s server with an offline bundle, want none", n, name)
		}
	}
}

func sum(a, b int) int { return a + b }

// TestOfflineCRLBundleErrors: NewVerifier reads the bundle once and
// refuses a missing, non-regular, oversized or CRL-less file with a
// *crlbundle.Error naming it.
func TestOfflineCRLBundleErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := testpki.WriteFile(t, dir, "garbage.pem", []byte("no CRL here"), 0o644)
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, crlbundle.MaxSize+1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		kind crlbundle.ErrorKind
		is   error
	}{
		{filepath.Join(dir, "missing.pem"), crlbundle.KindRead, os.ErrNotExist},
		{dir, crlbundle.KindRead, bounded.ErrNotRegular},
		{big, crlbundle.KindRead, nil},
		{garbage, crlbundle.KindEmpty, nil},
	} {
		_, err := verify.NewVerifier(verify.Options{TrustStore: truststore.New(dir), CRLBundle: tc.path})
		var be *crlbundle.Error
		if !errors.As(err, &be) || be.Kind != tc.kind || be.Path != tc.path || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("NewVerifier(CRLBundle: %s) = %v, want a %s *crlbundle.Error naming the file", tc.path, err, tc.kind)
			continue
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("NewVerifier(CRLBundle: %s) = %v, want it to wrap %v", tc.path, err, tc.is)
		}
	}
}
