package policy

import "github.com/keyward/keyward/internal/dn"

// DN is a distinguished name as notation reads trusted identities and leaf
// certificate subjects: a set of attribute types (case-sensitive, S read as
// ST) each with one value, compared without regard to order. [ParseDN]
// reads one; [Identity.DN] returns an identity's.
type DN = dn.DN

// Attribute is one attribute (type and value) of a [DN].
type Attribute = dn.Attribute

// ParseDN parses a distinguished name with the rules notation applies to
// x509.subject trusted identities: RFC 4514 syntax as read by go-ldap v3.4.10
// (',' or ';' between RDNs, values unescaped and trimmed), no '#'-encoded
// values, no multi-valued RDNs, no repeated attribute type, and C, ST (or S)
// and O present with non-empty values. Errors are [*DNError] values with
// notation's messages (notation-go v1.3.2 internal/pkix/pkix.go).
func ParseDN(s string) (DN, error) { return dn.Parse(s) }
