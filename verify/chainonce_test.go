package verify

import (
	"context"
	"crypto/x509"
	"reflect"
	"testing"

	"github.com/notaryproject/notation-core-go/revocation"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/truststore"
)

// TestRevocationWithoutServers checks the revocation results given without
// a second chain validation against notation-core-go's for the same chain,
// and that they are given only for a chain this Verifier validated, that
// passed, and whose certificates below the root name no OCSP responder and
// no CRL distribution point.
func TestRevocationWithoutServers(t *testing.T) {
	root := testpki.Root(t, "chainonce-root")
	inter := root.Intermediate(t, "chainonce-intermediate")
	other := testpki.Root(t, "chainonce-other-root")
	rootWithOCSP := testpki.Root(t, "chainonce-root-ocsp", testpki.WithOCSP("http://127.0.0.1:1/ocsp"))
	self := testpki.SelfSignedLeaf(t, "chainonce-self")
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		given bool // results given without core
	}{
		{"leaf, intermediate, root", testpki.Chain(inter.Leaf(t, "chainonce-leaf"), inter, root), true},
		{"self-signed leaf", testpki.Chain(self), true},
		{"root names OCSP", testpki.Chain(rootWithOCSP.Leaf(t, "chainonce-leaf-2"), rootWithOCSP), true},
		{"leaf names OCSP", testpki.Chain(root.Leaf(t, "chainonce-ocsp-leaf", testpki.WithOCSP("http://127.0.0.1:1/ocsp")), root), false},
		{"intermediate names a CRL", testpki.Chain(inter.Leaf(t, "chainonce-leaf-3"), root.Intermediate(t, "chainonce-crl-inter", testpki.WithCRL("http://127.0.0.1:1/crl")), root), false},
		{"wrong issuer", testpki.Chain(inter.Leaf(t, "chainonce-leaf-4"), other), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewVerifier(Options{TrustStore: truststore.New(t.TempDir())})
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := v.revocationWithoutServers(tc.chain); ok {
				t.Fatal("results given for a chain the Verifier has not validated")
			}
			chainErr := v.validateChain(context.Background(), tc.chain)
			got, ok := v.revocationWithoutServers(tc.chain)
			if ok != tc.given {
				t.Fatalf("given = %v, want %v (chain validation: %v)", ok, tc.given, chainErr)
			}
			if !ok {
				return
			}
			want, err := v.codeSigning.ValidateContext(context.Background(), revocation.ValidateContextOptions{CertChain: tc.chain})
			if err != nil {
				t.Fatalf("notation-core-go: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("results differ from notation-core-go's:\n got %#v\nwant %#v", got, want)
			}
		})
	}
}
