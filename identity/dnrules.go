package identity

import (
	"crypto/x509"
	"fmt"

	"github.com/keyward/keyward/internal/dn"
)

// NotationDN returns the DN rules notation applies to x509.subject
// identities (notation-go v1.3.2 verifier.verifyX509TrustedIdentities): a
// DN parsed with notation's grammar matches a leaf when every one of its
// attributes appears with the same value in the leaf's subject, as
// pkix.Name.String renders it and the same grammar parses it. It depends on
// nothing but the DN parser, so the plugin can judge x509.subject and
// keyward: identities without the policy package (and its JSON Schema).
func NotationDN() DNRules { return notationDN{} }

type notationDN struct{}

func (notationDN) ParseDN(value string) (DNMatcher, error) {
	d, err := dn.Parse(value)
	if err != nil {
		return nil, err
	}
	return dnSubset{d}, nil
}

type dnSubset struct{ dn dn.DN }

func (m dnSubset) MatchSubject(leaf *x509.Certificate) (bool, error) {
	s := leaf.Subject.String()
	subject, err := dn.Parse(s)
	if err != nil {
		return false, fmt.Errorf("signing certificate subject %q cannot be read as notation reads it: %w", s, err)
	}
	return m.dn.SubsetOf(subject), nil
}
