package chainrules_test

import (
	"crypto/x509"
	"testing"

	"github.com/keyward/keyward/internal/chainrules"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/upstream"
)

// TestPinnedVersion fails when go.mod requires another notation-core-go
// than the one the rules were read from; keys' TestCheckChainCoversNotation
// compares the rules with notation-core-go's over many chains.
func TestPinnedVersion(t *testing.T) {
	required, err := upstream.Required(".", chainrules.Module)
	if err != nil {
		t.Fatal(err)
	}
	if required != chainrules.Version {
		t.Fatalf("go.mod requires %s %s, but internal/chainrules copies %s: re-read notation-core-go %s x509/codesigning_cert_validations.go and x509/helper.go, "+
			"bring the rules in line, then set chainrules.Version", chainrules.Module, required, chainrules.Version, required)
	}
}

func TestRules(t *testing.T) {
	root := testpki.Root(t, "rules root")
	inter := root.Intermediate(t, "rules inter")
	leaf := inter.Leaf(t, "rules leaf")
	other := testpki.Root(t, "rules other root")

	if !chainrules.IssuedBy(leaf.Cert, inter.Cert) || chainrules.IssuedBy(leaf.Cert, root.Cert) || chainrules.IssuedBy(inter.Cert, other.Cert) {
		t.Error("IssuedBy does not follow names and signatures")
	}
	if !chainrules.SelfSigned(root.Cert) || chainrules.SelfSigned(leaf.Cert) {
		t.Error("SelfSigned is wrong")
	}
	if !chainrules.NamedBy(leaf.Cert, inter.Cert) || chainrules.NamedBy(leaf.Cert, root.Cert) {
		t.Error("NamedBy does not compare names")
	}

	tests := []struct {
		name string
		err  error
		ok   bool
	}{
		{"code-signing leaf", chainrules.LeafUsage(leaf.Cert), true},
		{"leaf that may sign certificates", chainrules.LeafUsage(inter.Leaf(t, "rules ca leaf", testpki.WithKeyUsage(x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign)).Cert), false},
		{"leaf with serverAuth", chainrules.LeafUsage(inter.Leaf(t, "rules tls leaf", testpki.WithEKU(x509.ExtKeyUsageServerAuth)).Cert), false},
		{"CA used as a leaf", chainrules.LeafUsage(inter.Cert), false},
		{"intermediate", chainrules.CAUsage(inter.Cert, 0), true},
		{"leaf used as a CA", chainrules.CAUsage(leaf.Cert, 0), false},
		{"path length 0 above a CA", chainrules.CAUsage(root.Intermediate(t, "rules short", testpki.WithMaxPathLen(0)).Cert, 1), false},
		{"CA without keyCertSign", chainrules.CAUsage(root.Intermediate(t, "rules no sign", testpki.WithKeyUsage(x509.KeyUsageDigitalSignature)).Cert, 0), false},
	}
	for _, tc := range tests {
		if (tc.err == nil) != tc.ok {
			t.Errorf("%s: error %v, want ok=%v", tc.name, tc.err, tc.ok)
		}
	}
}
