package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
)

// TestVerifySignatureHTTPSCRL runs the plugin binary's verify-signature
// with certificates whose CRL distribution point is https on 127.0.0.1: a
// good leaf passes revocation, a revoked one fails, and a CRL server whose
// TLS certificate the machine does not trust makes the status unknown
// (fail closed). The plugin trusts the test server through SSL_CERT_FILE,
// as a machine trusts a private CA.
func TestVerifySignatureHTTPSCRL(t *testing.T) {
	root := testpki.Root(t, "https crl root")
	inter := root.Intermediate(t, "https crl intermediate")
	crlSrv := testpki.StartCRL(t, inter)
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		der, err := crlSrv.CRL(false)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(der)
	}))
	defer srv.Close()
	url := srv.URL + "/inter.crl"
	good := inter.Leaf(t, "https crl good leaf", testpki.WithCRL(url))
	revoked := inter.Leaf(t, "https crl revoked leaf", testpki.WithCRL(url))
	crlSrv.Revoke(revoked.Cert.SerialNumber, time.Now().Add(-time.Minute))

	dir := t.TempDir()
	trusted := filepath.Join(dir, "tls-ca.pem")
	if err := os.WriteFile(trusted, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	untrusted := filepath.Join(dir, "other-ca.pem")
	if err := os.WriteFile(untrusted, testpki.CertsPEM(root.Cert), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		leaf     *testpki.Cert
		certFile string
		success  bool
		reason   string
	}{
		{"good leaf", good, trusted, true, ""},
		{"revoked leaf", revoked, trusted, false, "revoked"},
		{"untrusted TLS certificate", good, untrusted, false, "unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			chain := [][]byte{tc.leaf.Cert.Raw, inter.Cert.Raw, root.Cert.Raw}
			req, _ := json.Marshal(map[string]any{
				"contractVersion": "1.0",
				"signature": map[string]any{
					"criticalAttributes": map[string]any{
						"contentType": "application/vnd.cncf.notary.payload.v1+json", "signingScheme": "notary.x509",
					},
					"unprocessedAttributes": nil,
					"certificateChain":      chain,
				},
				"trustPolicy":  map[string]any{"trustedIdentities": []string{"*"}, "signatureVerification": []string{"SIGNATURE_VERIFIER.REVOCATION_CHECK"}},
				"pluginConfig": map[string]string{"revocation_crl_timeout": "5s", "revocation_ocsp_timeout": "1s"},
			})
			cmd := exec.Command(pluginBinary(t), "verify-signature")
			// A fresh HOME each time: the plugin keeps fetched CRLs in its
			// cache folder, which would answer without the network.
			home := t.TempDir()
			cmd.Env = []string{"HOME=" + home, "SSL_CERT_FILE=" + tc.certFile, "SSL_CERT_DIR=" + home}
			cmd.Stdin = bytes.NewReader(req)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			before := hits.Load()
			if err := cmd.Run(); err != nil {
				t.Fatalf("verify-signature: %v\n%s", err, errb.String())
			}
			var resp struct {
				VerificationResults map[string]struct {
					Success bool
					Reason  string
				}
			}
			if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			r, ok := resp.VerificationResults["SIGNATURE_VERIFIER.REVOCATION_CHECK"]
			if !ok || r.Success != tc.success || !strings.Contains(strings.ToLower(r.Reason), tc.reason) {
				t.Fatalf("revocation result %+v, want success %v and a reason with %q\n%s", r, tc.success, tc.reason, out.String())
			}
			if tc.certFile == trusted && hits.Load() == before {
				t.Error("the CRL was not fetched over https")
			}
		})
	}
}
