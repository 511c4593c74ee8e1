package identity

import (
	"fmt"
	"strings"
)

// Explain renders the identity in words, one phrase per clause, ANDed.
func (id *Identity) Explain() string {
	parts := make([]string, len(id.clauses))
	for i := range id.clauses {
		parts[i] = id.clauses[i].explain()
	}
	return "a signing certificate " + strings.Join(parts, ", and ")
}

func (c *Clause) explain() string {
	val := func(kind, norm string) string {
		a := "a"
		if strings.ContainsRune("aeiou", rune(kind[0])) {
			a = "an"
		}
		if c.Op == OpRegex {
			return fmt.Sprintf("with %s %s matching the whole pattern %q (%s)", a, kind, c.Value, norm)
		}
		return fmt.Sprintf("with %s %s equal to %q (%s)", a, kind, c.norm, norm)
	}
	switch c.Key {
	case KeySANURI:
		return val("URI subject alternative name", "scheme and host compared case-insensitively")
	case KeySANEmail:
		return val("e-mail subject alternative name", "domain compared case-insensitively")
	case KeySANDNS:
		return val("DNS subject alternative name", "compared case-insensitively, without a trailing dot, wildcards not expanded")
	case KeyOIDCIssuer:
		return fmt.Sprintf("issued for the OIDC issuer %q (Fulcio extension %s, else %s)", c.norm, oidIssuerV2, oidIssuerV1)
	case KeySPKISHA256:
		return fmt.Sprintf("whose public key has the SHA-256 pin %s", c.norm)
	case KeyCertSHA256:
		return fmt.Sprintf("whose DER has the SHA-256 thumbprint %s", c.norm)
	case KeyPolicy:
		return fmt.Sprintf("carrying the certificate policy %s", c.norm)
	case KeySubject:
		return fmt.Sprintf("whose subject contains the attributes of %q (notation's x509.subject rule)", c.Value)
	}
	name, _ := fulcioKey(c.Key)
	kind := fmt.Sprintf("Fulcio %s (extension %s)", name, c.oid)
	if c.Op == OpRegex {
		return fmt.Sprintf("with %s matching the whole pattern %q", kind, c.Value)
	}
	return fmt.Sprintf("with %s equal to %q", kind, c.norm)
}
