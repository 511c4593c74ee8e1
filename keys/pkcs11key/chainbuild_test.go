package pkcs11key

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
)

func finder(pool ...*x509.Certificate) issuerFinder {
	return func(*x509.Certificate) ([]*x509.Certificate, error) { return pool, nil }
}

// TestBuildChainRenewedCA: two intermediates share a name; the one whose
// key signed the leaf is chosen, whatever the order.
func TestBuildChainRenewedCA(t *testing.T) {
	root := testpki.Root(t, "chain root")
	oldCA := root.Intermediate(t, "chain CA", testpki.WithKey(testpki.Key(t, "EC-256", "old ca")))
	newCA := root.Intermediate(t, "chain CA", testpki.WithKey(testpki.Key(t, "EC-256", "new ca")))
	leaf := newCA.Leaf(t, "chain leaf")
	for _, pool := range [][]*x509.Certificate{{oldCA.Cert, newCA.Cert, root.Cert}, {root.Cert, newCA.Cert, oldCA.Cert}} {
		chain, err := buildChain(leaf.Cert, finder(pool...), time.Now(), "test")
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) != 3 || !chain[1].Equal(newCA.Cert) || !chain[2].Equal(root.Cert) {
			t.Errorf("chain %v", chain)
		}
	}
}

func TestBuildChainMissingIssuer(t *testing.T) {
	root := testpki.Root(t, "chain root 2")
	ca := root.Intermediate(t, "chain CA 2")
	leaf := ca.Leaf(t, "chain leaf 2")
	_, err := buildChain(leaf.Cert, finder(root.Cert), time.Now(), "the token")
	if err == nil || !strings.Contains(err.Error(), `no issuer certificate of "CN=chain leaf 2`) || !strings.Contains(err.Error(), "ca_certs=") {
		t.Errorf("missing intermediate: %v", err)
	}
	// A self-issued leaf is a chain of one.
	self := testpki.SelfSignedLeaf(t, "self")
	chain, err := buildChain(self.Cert, finder(), time.Now(), "x")
	if err != nil || len(chain) != 1 {
		t.Errorf("self-signed: %v, %v", chain, err)
	}
}
