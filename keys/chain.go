package keys

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
	"time"
)

var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

// CheckChain decides whether pub may sign with chain at time now. It refuses
// what notation refuses when it assembles or verifies the signature
// (notation-core-go ValidateCodeSigningCertChain, specification
// signature-specification.md "Certificate Requirements"), plus the rules of
// the specification that notation v1.3.2 does not enforce, and says which
// certificate is wrong and how to fix it.
// source names where the chain came from, for the messages.
//
// Errors are [KindInvalid].
func CheckChain(pub crypto.PublicKey, chain []*x509.Certificate, source string, now time.Time) error {
	return checkChain(pub, chain, source, now, issuedBy)
}

// checkChain is CheckChain with the issuance test given: issuedBy verifies
// signatures, namedBy (for chains whose signatures were verified before)
// compares names only.
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
			err = checkLeafUsage(c)
		} else {
			err = checkCAUsage(c, i-1)
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
	case isSelfSigned(c):
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

func isSelfSigned(c *x509.Certificate) bool {
	return issuedBy(c, c)
}

// issuedBy reports whether issuer's name and key signed c. It checks only
// the name and the signature, not whether issuer may act as a CA
// (x509.Certificate.CheckSignatureFrom would refuse a self-signed leaf and
// hide a non-CA intermediate behind "not issued by"): checkCAUsage reports
// those with their own messages.
func issuedBy(c, issuer *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, issuer.RawSubject) &&
		issuer.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// namedBy reports whether c names issuer as its issuer.
func namedBy(c, issuer *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, issuer.RawSubject)
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

// keyUsageCritical reports whether c has a key usage extension and whether it
// is marked critical.
func keyUsageCritical(c *x509.Certificate) (present, critical bool) {
	for _, ext := range c.Extensions {
		if ext.Id.Equal(oidKeyUsage) {
			return true, ext.Critical
		}
	}
	return false, false
}

// checkLeafUsage enforces the leaf requirements of the specification's
// "Certificate Requirements" section: keyUsage present, critical,
// digitalSignature and nothing that encrypts or certifies; basicConstraints,
// when present, not a CA; no extended key usage meant for TLS, e-mail,
// timestamping, OCSP, or any purpose.
func checkLeafUsage(c *x509.Certificate) error {
	present, critical := keyUsageCritical(c)
	switch {
	case !present:
		return fmt.Errorf("the key usage extension is missing: issue the certificate with a critical keyUsage of digitalSignature")
	case !critical:
		return fmt.Errorf("the key usage extension is not marked critical: issue the certificate with a critical keyUsage of digitalSignature")
	case c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return fmt.Errorf("the key usage lacks digitalSignature: issue the certificate with a critical keyUsage of digitalSignature")
	}
	forbidden := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
		{x509.KeyUsageDataEncipherment, "dataEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"},
		{x509.KeyUsageCertSign, "keyCertSign"},
		{x509.KeyUsageCRLSign, "cRLSign"},
		{x509.KeyUsageEncipherOnly, "encipherOnly"},
		{x509.KeyUsageDecipherOnly, "decipherOnly"},
	}
	var bad []string
	for _, f := range forbidden {
		if c.KeyUsage&f.bit != 0 {
			bad = append(bad, f.name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the key usage has %s, which a code-signing leaf must not have: issue the certificate with keyUsage digitalSignature only",
			strings.Join(bad, ", "))
	}
	if c.BasicConstraintsValid && c.IsCA {
		return fmt.Errorf("the certificate is a CA (basicConstraints cA=true): sign with an end-entity certificate")
	}
	for _, eku := range c.ExtKeyUsage {
		if name, bad := forbiddenLeafEKU[eku]; bad {
			return fmt.Errorf("the extended key usage has %s, which a code-signing certificate must not have: issue it with extendedKeyUsage codeSigning only (or none)", name)
		}
	}
	return nil
}

// forbiddenLeafEKU are the extended key usages the specification forbids on a
// code-signing leaf. notation v1.3.2 also forbids OCSPSigning but accepts
// anyExtendedKeyUsage, which the specification forbids: we refuse both.
var forbiddenLeafEKU = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "anyExtendedKeyUsage",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

// checkCAUsage enforces the CA requirements: basicConstraints cA=true with a
// path length that allows the certificates below, and a critical keyUsage
// with keyCertSign. below is the number of CA certificates under c.
func checkCAUsage(c *x509.Certificate, below int) error {
	if !c.BasicConstraintsValid || !c.IsCA {
		return fmt.Errorf("the certificate is not a CA (basicConstraints cA=true is missing): only CA certificates may follow the leaf")
	}
	if c.MaxPathLen > 0 || (c.MaxPathLen == 0 && c.MaxPathLenZero) {
		if c.MaxPathLen < below {
			return fmt.Errorf("its path length constraint is %d but %d CA certificate(s) follow below it: reissue it with a larger pathLenConstraint", c.MaxPathLen, below)
		}
	}
	present, critical := keyUsageCritical(c)
	switch {
	case !present:
		return fmt.Errorf("the key usage extension is missing: a CA certificate needs a critical keyUsage with keyCertSign")
	case !critical:
		return fmt.Errorf("the key usage extension is not marked critical: a CA certificate needs a critical keyUsage with keyCertSign")
	case c.KeyUsage&x509.KeyUsageCertSign == 0:
		return fmt.Errorf("the key usage lacks keyCertSign: a CA certificate needs a critical keyUsage with keyCertSign")
	}
	return nil
}
