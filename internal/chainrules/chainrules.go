// Package chainrules holds the certificate rules keyward copies from
// notation, so that a chain keyward's plugin signs with is one notation
// accepts: notation-core-go v1.3.0 x509/codesigning_cert_validations.go and
// x509/helper.go (ValidateCodeSigningCertChain: issuance, basic constraints,
// path length, key usage and extended key usage of the leaf and the CAs),
// tightened where the specification signature-specification.md
// "Certificate Requirements" is stricter than notation v1.3.2.
//
// The rules return errors that say what is wrong with one certificate and
// how to fix it; package keys (CheckChain) names the certificate and where
// the chain came from. keys' TestCheckChainCoversNotation holds the rules
// to refusing everything ValidateCodeSigningCertChain refuses, and fails
// when go.mod requires another notation-core-go than [Version].
package chainrules

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"strings"
)

// Module is the upstream module whose rules this package copies.
const Module = "github.com/notaryproject/notation-core-go"

// Version is the version of [Module] the rules were read from.
const Version = "v1.3.0"

var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

// SelfSigned reports whether c is issued by its own name and key.
func SelfSigned(c *x509.Certificate) bool {
	return IssuedBy(c, c)
}

// IssuedBy reports whether issuer's name and key signed c. It checks only
// the name and the signature, not whether issuer may act as a CA
// (x509.Certificate.CheckSignatureFrom would refuse a self-signed leaf and
// hide a non-CA intermediate behind "not issued by"): [CAUsage] reports
// those with their own messages.
func IssuedBy(c, issuer *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, issuer.RawSubject) &&
		issuer.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// NamedBy reports whether c names issuer as its issuer.
func NamedBy(c, issuer *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, issuer.RawSubject)
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

// LeafUsage enforces the leaf requirements of the specification's
// "Certificate Requirements" section: keyUsage present, critical,
// digitalSignature and nothing that encrypts or certifies; basicConstraints,
// when present, not a CA; no extended key usage meant for TLS, e-mail,
// timestamping, OCSP, or any purpose.
func LeafUsage(c *x509.Certificate) error {
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

// CAUsage enforces the CA requirements: basicConstraints cA=true with a
// path length that allows the certificates below, and a critical keyUsage
// with keyCertSign. below is the number of CA certificates under c.
func CAUsage(c *x509.Certificate, below int) error {
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
