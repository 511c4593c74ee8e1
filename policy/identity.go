package policy

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
)

// The trusted identity forms notation knows (spec "Trusted Identities").
const (
	// WildcardIdentity trusts any signer that chains to the trust stores.
	WildcardIdentity = "*"
	// X509SubjectPrefix introduces a distinguished name matched against the
	// signing certificate's subject.
	X509SubjectPrefix = "x509.subject"
)

// Identity is one parsed trusted identity: "*", "x509.subject:<DN>", or
// "<prefix>:<value>" for a verification plugin (which notation accepts
// unchecked).
type Identity struct {
	raw    string
	prefix string
	value  string
	dn     DN
}

// String returns the identity as written in the document.
func (i Identity) String() string { return i.raw }

// IsWildcard reports whether the identity is "*".
func (i Identity) IsWildcard() bool { return i.raw == WildcardIdentity }

// IsX509Subject reports whether the identity is an x509.subject DN.
func (i Identity) IsX509Subject() bool { return i.prefix == X509SubjectPrefix }

// Prefix returns the part before the first ':' ("" for "*").
func (i Identity) Prefix() string { return i.prefix }

// Value returns the part after the first ':' ("" for "*").
func (i Identity) Value() string { return i.value }

// DN returns the parsed distinguished name of an x509.subject identity
// (the zero DN otherwise).
func (i Identity) DN() DN { return i.dn }

// Matches reports whether a signing (leaf) certificate with this subject
// satisfies the identity, the way notation decides it: "*" matches
// anything; an x509.subject identity matches when every one of its
// attributes appears with the same value in the subject as rendered by
// pkix.Name.String() and parsed by [ParseDN]. A subject that cannot be parsed
// (no ST, a repeated attribute such as two OUs, an attribute Go renders as
// "=#...", such as emailAddress) is an error: only "*" trusts it. Identities
// of other prefixes belong to verification plugins and never match here.
func (i Identity) Matches(subject pkix.Name) (bool, error) {
	if i.IsWildcard() {
		return true, nil
	}
	if !i.IsX509Subject() {
		return false, nil
	}
	leaf, err := parseSubject(subject)
	if err != nil {
		return false, err
	}
	return i.dn.SubsetOf(leaf), nil
}

// MatchesCertificate is [Identity.Matches] for cert's subject.
func (i Identity) MatchesCertificate(cert *x509.Certificate) (bool, error) {
	return i.Matches(cert.Subject)
}

func parseSubject(subject pkix.Name) (DN, error) {
	s := subject.String()
	dn, err := ParseDN(s)
	if err != nil {
		return DN{}, &SubjectError{Subject: s, Err: err.(*DNError)}
	}
	return dn, nil
}

// VerifyIdentity decides whether the signing (leaf) certificate of a
// signature satisfies the statement's trusted identities, with notation-go
// v1.3.2's rules and messages (verifier.verifyX509TrustedIdentities): nil
// when the identities are ["*"] or some x509.subject identity is a subset
// of the leaf's subject; an error when the statement has no x509.subject
// identity (only plugin identities), when the leaf subject cannot be parsed
// (a [*SubjectError]), or when nothing matches.
func (s *Statement) VerifyIdentity(leaf *x509.Certificate) error {
	if s.TrustsAnyIdentity() {
		return nil
	}
	ids := s.x509Identities()
	if len(ids) == 0 {
		return fmt.Errorf("no x509 trusted identities are configured in the trust policy %q", s.name)
	}
	subject, err := parseSubject(leaf.Subject)
	if err != nil {
		return err
	}
	maps := make([]map[string]string, len(ids))
	for i, id := range ids {
		if id.dn.SubsetOf(subject) {
			return nil
		}
		maps[i] = id.dn.Map()
	}
	return fmt.Errorf("signing certificate from the digital signature does not match the X.509 trusted identities %q defined in the trust policy %q", maps, s.name)
}
