package keys

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/keyward/keyward/internal/chainrules"
)

// CheckChain decides whether pub may sign with chain at time now. It refuses
// what notation refuses when it assembles or verifies the signature
// (notation-core-go ValidateCodeSigningCertChain, specification
// signature-specification.md "Certificate Requirements"), plus the rules of
// the specification that notation v1.3.2 does not enforce, and says which
// certificate is wrong and how to fix it. The rules for each certificate,
// copied from notation-core-go, are in internal/chainrules; this file
// orders them and names the certificate in the messages.
// source names where the chain came from, for the messages.
//
// Errors are [KindInvalid].
func CheckChain(pub crypto.PublicKey, chain []*x509.Certificate, source string, now time.Time) error {
	return checkChain(pub, chain, source, now, chainrules.IssuedBy)
}

// checkChain is CheckChain with the issuance test given:
// chainrules.IssuedBy verifies signatures, chainrules.NamedBy (for chains
// whose signatures were verified before) compares names only.
func checkChain(pub crypto.PublicKey, chain []*x509.Certificate, source string, now time.Time, issued func(c, issuer *x509.Certificate) bool) error {
	if len(chain) == 0 {
		return Invalidf("no certificate chain for the key: set plugin config %s=<PEM bundle: leaf certificate first, then intermediates, ending with the root>", ConfigCertChain)
	}
	if err := checkLeafKey(pub, chain, source); err != nil {
		return err
	}
	if err := checkOrder(chain, source, issued); err != nil {
		return err
	}
	for i, c := range chain {
		if err := checkValidity(c, i, source, now); err != nil {
			return err
		}
		var err error
		if i == 0 {
			err = chainrules.LeafUsage(c)
		} else {
			err = chainrules.CAUsage(c, i-1)
		}
		if err != nil {
			return Invalidf("%s in %s: %w", describe(c, i), source, err)
		}
	}
	// These checks refuse everything notation-core-go's
	// ValidateCodeSigningCertChain refuses (TestCheckChainCoversNotation
	// holds us to it), so the chain's signatures are verified once, not twice:
	// each ECDSA P-384 check costs about half a millisecond of the plugin's
	// budget per notation sign.
	return nil
}

// describe names certificate i of a chain for messages.
func describe(c *x509.Certificate, i int) string {
	role := "intermediate certificate"
	switch {
	case i == 0:
		role = "leaf certificate"
	case chainrules.SelfSigned(c):
		role = "root certificate"
	}
	return fmt.Sprintf("%s #%d (subject %q)", role, i+1, c.Subject.String())
}

func checkLeafKey(pub crypto.PublicKey, chain []*x509.Certificate, source string) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	k, ok := pub.(equaler)
	if !ok {
		return Invalidf("%T keys are not supported", pub)
	}
	if _, err := SpecOf(pub); err != nil {
		return err
	}
	if k.Equal(chain[0].PublicKey) {
		if _, err := SpecOf(chain[0].PublicKey); err != nil {
			return Invalidf("%s in %s: %w", describe(chain[0], 0), source, err)
		}
		return nil
	}
	for i, c := range chain[1:] {
		if k.Equal(c.PublicKey) {
			return Invalidf("%s in %s certifies another key than the signing key; certificate #%d (subject %q) is the one for this key: put it first (leaf first, then intermediates, ending with the root)",
				describe(chain[0], 0), source, i+2, c.Subject.String())
		}
	}
	return Invalidf("%s in %s certifies another key than the signing key: use the certificate issued for this key as the first certificate of the chain",
		describe(chain[0], 0), source)
}

func checkOrder(chain []*x509.Certificate, source string, issued func(c, issuer *x509.Certificate) bool) error {
	last := len(chain) - 1
	for i := 0; i < last; i++ {
		c := chain[i]
		if issued(c, c) {
			return Invalidf("%s in %s is self-signed but is not the last certificate: the chain must be leaf first, then intermediates, ending with the one self-signed root", describe(c, i), source)
		}
		if issued(c, chain[i+1]) {
			continue
		}
		for j, other := range chain {
			if j != i && j != i+1 && issued(c, other) {
				return Invalidf("certificates in %s are out of order: %s was issued by certificate #%d (subject %q), which must come right after it (leaf first, then each issuer, ending with the root)",
					source, describe(c, i), j+1, other.Subject.String())
			}
		}
		return Invalidf("%s in %s was not issued by the next certificate #%d (subject %q): add the certificate of its issuer %q in between, or remove the unrelated certificate",
			describe(c, i), source, i+2, chain[i+1].Subject.String(), c.Issuer.String())
	}
	root := chain[last]
	if !issued(root, root) {
		return Invalidf("the chain in %s ends with certificate #%d (subject %q, issued by %q), which is not a self-signed root: append the root certificate of %q to the bundle (notation requires the root in the chain)",
			source, last+1, root.Subject.String(), root.Issuer.String(), root.Issuer.String())
	}
	return nil
}

func checkValidity(c *x509.Certificate, i int, source string, now time.Time) error {
	if now.Before(c.NotBefore) {
		return Invalidf("%s in %s is not valid yet: valid from %s; sign after that time or check the clock",
			describe(c, i), source, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(c.NotAfter) {
		return Invalidf("%s in %s expired at %s: renew the certificate",
			describe(c, i), source, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}
