package plugin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testpki"
)

// TestCRLFetcherHTTPS fetches a CRL over https (notation-core-go's own
// fetcher takes http only), and refuses other schemes and bad answers.
func TestCRLFetcherHTTPS(t *testing.T) {
	ca := testpki.Root(t, "fetcher root")
	crlSrv := testpki.StartCRL(t, ca)
	der, err := crlSrv.CRL(false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ca.crl":
			w.Write(der)
		case "/garbage.crl":
			w.Write([]byte("not a CRL"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	f := &crlFetcher{client: srv.Client()}
	b, err := f.Fetch(context.Background(), srv.URL+"/ca.crl")
	if err != nil || b.BaseCRL == nil || b.BaseCRL.CheckSignatureFrom(ca.Cert) != nil {
		t.Fatalf("Fetch over https = %+v, %v", b, err)
	}
	for url, want := range map[string]string{
		srv.URL + "/garbage.crl":  "does not parse",
		srv.URL + "/missing.crl":  "404",
		"ldap://ldap.example/crl": "only http and https",
		"file:///etc/passwd":      "only http and https",
	} {
		if _, err := f.Fetch(context.Background(), url); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Fetch(%s) = %v, want an error with %q", url, err, want)
		}
	}
}
