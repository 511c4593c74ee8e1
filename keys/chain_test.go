package keys_test

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	nx509 "github.com/notaryproject/notation-core-go/x509"

	"github.com/keyward/keyward/internal/chainrules"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/upstream"
	"github.com/keyward/keyward/keys"
)

// TestCheckChain runs one row per rule of the specification's certificate
// requirements and asserts that the message names the certificate and the
// fix.
func TestCheckChain(t *testing.T) {
	now := time.Now()
	root := testpki.Root(t, "chain root")
	inter := root.Intermediate(t, "chain intermediate")
	leaf := inter.Leaf(t, "chain leaf")
	otherRoot := testpki.Root(t, "other root")
	leafKey := leaf.Key

	tests := []struct {
		name  string
		pub   crypto.PublicKey
		chain func(t *testing.T) []*x509.Certificate
		want  []string // substrings of the error; nil means success
	}{
		{
			name:  "valid three certificates",
			pub:   leafKey.Public(),
			chain: func(*testing.T) []*x509.Certificate { return testpki.Chain(leaf, inter, root) },
		},
		{
			name: "valid self-signed leaf alone",
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(testpki.SelfSignedLeaf(t, "self", testpki.WithKey(leafKey)))
			},
			pub: leafKey.Public(),
		},
		{
			name:  "empty chain",
			pub:   leafKey.Public(),
			chain: func(*testing.T) []*x509.Certificate { return nil },
			want:  []string{"no certificate chain", "cert_chain="},
		},
		{
			name:  "leaf of another key, the right one later in the chain",
			pub:   inter.Key.Public(),
			chain: func(*testing.T) []*x509.Certificate { return testpki.Chain(leaf, inter, root) },
			want:  []string{`leaf certificate #1 (subject "CN=chain leaf`, "certifies another key", "certificate #2", "put it first"},
		},
		{
			name:  "leaf of another key",
			pub:   testpki.Key(t, "EC-256", "unrelated").Public(),
			chain: func(*testing.T) []*x509.Certificate { return testpki.Chain(leaf, inter, root) },
			want:  []string{"certifies another key", "use the certificate issued for this key"},
		},
		{
			name:  "root missing",
			pub:   leafKey.Public(),
			chain: func(*testing.T) []*x509.Certificate { return testpki.Chain(leaf, inter) },
			want:  []string{"ends with certificate #2", "chain intermediate", "not a self-signed root", "append the root certificate", "chain root"},
		},
		{
			name:  "intermediate and root swapped",
			pub:   leafKey.Public(),
			chain: func(*testing.T) []*x509.Certificate { return testpki.Chain(leaf, root, inter) },
			want:  []string{"out of order", "leaf certificate #1", "certificate #3", "chain intermediate"},
		},
		{
			name: "self-signed certificate before the end",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(testpki.SelfSignedLeaf(t, "self first", testpki.WithKey(leafKey)), root)
			},
			want: []string{"leaf certificate #1", "self first", "self-signed but is not the last"},
		},
		{
			name: "out of order with two intermediates",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				i1 := root.Intermediate(t, "order i1")
				i2 := i1.Intermediate(t, "order i2")
				l := i2.Leaf(t, "order leaf", testpki.WithKey(leafKey))
				return testpki.Chain(l, i1, i2, root)
			},
			want: []string{"out of order", "order i2", "must come right after it"},
		},
		{
			name:  "unrelated root",
			pub:   leafKey.Public(),
			chain: func(*testing.T) []*x509.Certificate { return testpki.Chain(leaf, inter, otherRoot) },
			want:  []string{"was not issued by the next certificate #3", "other root", `add the certificate of its issuer "CN=chain root`},
		},
		{
			name: "expired leaf",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				l := inter.Leaf(t, "expired leaf", testpki.WithKey(leafKey), testpki.WithValidity(now.Add(-48*time.Hour), now.Add(-time.Hour)))
				return testpki.Chain(l, inter, root)
			},
			want: []string{"leaf certificate #1", "expired leaf", "expired at", "renew"},
		},
		{
			name: "not yet valid intermediate",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				i := root.Intermediate(t, "future intermediate", testpki.WithValidity(now.Add(time.Hour), now.Add(48*time.Hour)))
				l := i.Leaf(t, "leaf of future", testpki.WithKey(leafKey))
				return testpki.Chain(l, i, root)
			},
			want: []string{"intermediate certificate #2", "future intermediate", "not valid yet"},
		},
		{
			name: "leaf without key usage",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "no ku", testpki.WithKey(leafKey), testpki.WithoutKeyUsage()), inter, root)
			},
			want: []string{"leaf certificate #1", "no ku", "key usage extension is missing"},
		},
		{
			name: "leaf key usage not critical",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "ku noncrit", testpki.WithKey(leafKey), testpki.WithNonCriticalKeyUsage()), inter, root)
			},
			want: []string{"not marked critical"},
		},
		{
			name: "leaf with keyEncipherment",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "ku enc", testpki.WithKey(leafKey),
					testpki.WithKeyUsage(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment)), inter, root)
			},
			want: []string{"keyEncipherment", "digitalSignature only"},
		},
		{
			name: "leaf without digitalSignature",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "ku cs", testpki.WithKey(leafKey),
					testpki.WithKeyUsage(x509.KeyUsageContentCommitment)), inter, root)
			},
			want: []string{"lacks digitalSignature"},
		},
		{
			name: "leaf with serverAuth EKU",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "eku tls", testpki.WithKey(leafKey),
					testpki.WithEKU(x509.ExtKeyUsageCodeSigning, x509.ExtKeyUsageServerAuth)), inter, root)
			},
			want: []string{"serverAuth", "codeSigning only"},
		},
		{
			name: "leaf with anyExtendedKeyUsage (spec forbids, notation v1.3.2 accepts)",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "eku any", testpki.WithKey(leafKey),
					testpki.WithEKU(x509.ExtKeyUsageAny)), inter, root)
			},
			want: []string{"anyExtendedKeyUsage"},
		},
		{
			name: "leaf is a CA",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "leaf ca", testpki.WithKey(leafKey),
					testpki.WithTemplate(func(c *x509.Certificate) { c.IsCA = true })), inter, root)
			},
			want: []string{"is a CA", "end-entity"},
		},
		{
			name: "intermediate is not a CA",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				i := root.Intermediate(t, "not ca", testpki.WithTemplate(func(c *x509.Certificate) { c.IsCA = false }))
				return testpki.Chain(i.Leaf(t, "under not ca", testpki.WithKey(leafKey)), i, root)
			},
			want: []string{"intermediate certificate #2", "not ca", "not a CA"},
		},
		{
			name: "intermediate without keyCertSign",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				i := root.Intermediate(t, "no certsign", testpki.WithKeyUsage(x509.KeyUsageDigitalSignature|x509.KeyUsageCRLSign))
				return testpki.Chain(i.Leaf(t, "under no certsign", testpki.WithKey(leafKey)), i, root)
			},
			want: []string{"lacks keyCertSign"},
		},
		{
			name: "path length exceeded",
			pub:  leafKey.Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				r := testpki.Root(t, "pathlen root", testpki.WithMaxPathLen(0))
				i := r.Intermediate(t, "pathlen inter")
				return testpki.Chain(i.Leaf(t, "pathlen leaf", testpki.WithKey(leafKey)), i, r)
			},
			want: []string{"root certificate #3", "path length constraint is 0", "1 CA certificate(s)"},
		},
		{
			name: "RSA-1024 leaf",
			pub:  testpki.Key(t, "RSA-1024", "weak").Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "weak", testpki.WithKeySpec("RSA-1024")), inter, root)
			},
			want: []string{"RSA key size 1024 bits is not supported"},
		},
		{
			name: "P-224 leaf",
			pub:  testpki.Key(t, "EC-224", "p224").Public(),
			chain: func(t *testing.T) []*x509.Certificate {
				return testpki.Chain(inter.Leaf(t, "p224", testpki.WithKeySpec("EC-224")), inter, root)
			},
			want: []string{"P-224 is not supported"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chain := tc.chain(t)
			err := keys.CheckChain(tc.pub, chain, `cert_chain file "/x/chain.pem"`, now)
			// CheckChain must refuse at least what notation refuses at
			// signing time: it replaces notation-core-go's validation.
			if coreErr := nx509.ValidateCodeSigningCertChain(chain, &now); coreErr != nil && err == nil {
				t.Fatalf("notation-core-go refuses the chain (%v) but CheckChain accepts it", coreErr)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckChain() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckChain() = nil, want an error containing %q", tc.want)
			}
			if !isKind(err, keys.KindInvalid) {
				t.Errorf("KindOf(err) = %v, want KindInvalid", keys.KindOf(err))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("CheckChain() = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestSpecOf(t *testing.T) {
	for _, spec := range []string{"RSA-2048", "RSA-3072", "RSA-4096", "EC-256", "EC-384", "EC-521"} {
		t.Run(spec, func(t *testing.T) {
			got, err := keys.SpecOf(testpki.Key(t, spec, "spec").Public())
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != spec {
				t.Errorf("SpecOf() = %s, want %s", got.Name, spec)
			}
			byName, err := keys.SpecByName(spec)
			if err != nil || byName != got {
				t.Errorf("SpecByName(%s) = %v, %v; want %v", spec, byName, err, got)
			}
		})
	}
}

// isKind reports whether err's chain holds a [*keys.Error] of the kind.
func isKind(err error, kind keys.ErrorKind) bool {
	var ke *keys.Error
	return errors.As(err, &ke) && ke.Kind == kind
}

// TestCheckChainCoversNotation holds CheckChain, whose certificate rules
// are internal/chainrules' copy of notation-core-go's, to refusing every
// chain notation-core-go's ValidateCodeSigningCertChain refuses, over chains
// that vary each property those rules read (key usage bits and
// criticality, extended key usages, basic constraints, path length, order,
// validity); Opener relies on it to skip verifying remembered chains'
// signatures. It fails first when go.mod requires another notation-core-go
// than the one chainrules was read from.
func TestCheckChainCoversNotation(t *testing.T) {
	required, err := upstream.Required(".", chainrules.Module)
	if err != nil {
		t.Fatal(err)
	}
	if required != chainrules.Version {
		t.Fatalf("go.mod requires %s %s, but internal/chainrules copies %s: re-read notation-core-go %s x509/codesigning_cert_validations.go and x509/helper.go, "+
			"bring internal/chainrules in line, then set chainrules.Version", chainrules.Module, required, chainrules.Version, required)
	}

	now := time.Now()
	root := testpki.Root(t, "covers root")
	inter := root.Intermediate(t, "covers inter")
	caTmpl := func(isCA bool) testpki.Option {
		return testpki.WithTemplate(func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = true, isCA })
	}
	type chainCase struct {
		name  string
		chain []*x509.Certificate
	}
	var cases []chainCase
	leafCase := func(name string, opts ...testpki.Option) {
		cases = append(cases, chainCase{"leaf " + name, testpki.Chain(inter.Leaf(t, "covers leaf "+name, opts...), inter, root)})
	}
	leafCase("valid")
	for _, ku := range []x509.KeyUsage{0, x509.KeyUsageContentCommitment, x509.KeyUsageKeyEncipherment, x509.KeyUsageDataEncipherment,
		x509.KeyUsageKeyAgreement, x509.KeyUsageCertSign, x509.KeyUsageCRLSign, x509.KeyUsageEncipherOnly | x509.KeyUsageKeyAgreement,
		x509.KeyUsageDecipherOnly | x509.KeyUsageKeyAgreement} {
		leafCase(fmt.Sprintf("key usage digitalSignature|%#x", ku), testpki.WithKeyUsage(x509.KeyUsageDigitalSignature|ku))
		if ku != 0 {
			leafCase(fmt.Sprintf("key usage %#x alone", ku), testpki.WithKeyUsage(ku))
		}
	}
	leafCase("without key usage", testpki.WithoutKeyUsage())
	leafCase("non-critical key usage", testpki.WithKeyUsage(x509.KeyUsageDigitalSignature), testpki.WithNonCriticalKeyUsage())
	for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageAny, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth,
		x509.ExtKeyUsageEmailProtection, x509.ExtKeyUsageTimeStamping, x509.ExtKeyUsageOCSPSigning} {
		leafCase(fmt.Sprintf("extended key usage %d", eku), testpki.WithEKU(eku))
		leafCase(fmt.Sprintf("extended key usages codeSigning and %d", eku), testpki.WithEKU(x509.ExtKeyUsageCodeSigning, eku))
	}
	leafCase("without extended key usage", testpki.WithEKU())
	leafCase("CA", caTmpl(true))
	leafCase("CA with keyCertSign", caTmpl(true), testpki.WithKeyUsage(x509.KeyUsageDigitalSignature|x509.KeyUsageCertSign))
	leafCase("expired", testpki.WithValidity(now.Add(-2*time.Hour), now.Add(-time.Hour)))
	leafCase("not yet valid", testpki.WithValidity(now.Add(time.Hour), now.Add(2*time.Hour)))

	interCase := func(name string, opts ...testpki.Option) {
		i := root.Intermediate(t, "covers inter "+name, opts...)
		cases = append(cases, chainCase{"intermediate " + name, testpki.Chain(i.Leaf(t, "covers leaf under "+name), i, root)})
	}
	interCase("without keyCertSign", testpki.WithKeyUsage(x509.KeyUsageDigitalSignature))
	interCase("without key usage", testpki.WithoutKeyUsage())
	interCase("non-critical key usage", testpki.WithKeyUsage(x509.KeyUsageCertSign), testpki.WithNonCriticalKeyUsage())
	interCase("not a CA", caTmpl(false))
	interCase("path length 0", testpki.WithMaxPathLen(0))
	interCase("expired", testpki.WithValidity(now.Add(-2*time.Hour), now.Add(-time.Hour)))
	short := testpki.Root(t, "covers root path length 0", testpki.WithMaxPathLen(0))
	shortInter := short.Intermediate(t, "covers inter under path length 0")
	cases = append(cases, chainCase{"root path length 0 above an intermediate", testpki.Chain(shortInter.Leaf(t, "covers leaf under path length 0"), shortInter, short)})

	leaf := inter.Leaf(t, "covers leaf order")
	self := testpki.SelfSignedLeaf(t, "covers self-signed")
	cases = append(cases,
		chainCase{"order leaf root intermediate", testpki.Chain(leaf, root, inter)},
		chainCase{"order without root", testpki.Chain(leaf, inter)},
		chainCase{"order leaf alone", testpki.Chain(leaf)},
		chainCase{"order intermediate root", testpki.Chain(inter, root)},
		chainCase{"order root alone", testpki.Chain(root)},
		chainCase{"order self-signed leaf alone", testpki.Chain(self)},
		chainCase{"order self-signed leaf above a root", testpki.Chain(self, root)},
		chainCase{"order root twice", testpki.Chain(leaf, inter, root, root)},
	)

	refused := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			coreErr := nx509.ValidateCodeSigningCertChain(c.chain, &now)
			err := keys.CheckChain(c.chain[0].PublicKey, c.chain, "the test chain", now)
			if coreErr != nil {
				refused++
				if err == nil {
					t.Fatalf("notation-core-go refuses the chain (%v) but CheckChain accepts it", coreErr)
				}
			}
			if err != nil && !isKind(err, keys.KindInvalid) {
				t.Errorf("CheckChain() error is not a KindInvalid *keys.Error: %v", err)
			}
		})
	}
	// The corpus must exercise notation's refusals, or the test proves
	// nothing.
	if refused < len(cases)/2 {
		t.Errorf("notation-core-go refuses only %d of %d chains: the corpus no longer varies what it checks", refused, len(cases))
	}
}
