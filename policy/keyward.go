package policy

import (
	"crypto/x509"

	"github.com/keyward/keyward/identity"
)

// SubjectRules returns notation's x509.subject rules (ParseDN, and the
// subset match of [Identity.Matches]) for the identity package, which reads
// subject= clauses and x509.subject identities with them.
func SubjectRules() identity.DNRules { return subjectRules{} }

type subjectRules struct{}

func (subjectRules) ParseDN(value string) (identity.DNMatcher, error) {
	dn, err := ParseDN(value)
	if err != nil {
		return nil, err
	}
	return dnMatcher{Identity{raw: X509SubjectPrefix + ":" + value, prefix: X509SubjectPrefix, value: value, dn: dn}}, nil
}

type dnMatcher struct{ id Identity }

func (m dnMatcher) MatchSubject(leaf *x509.Certificate) (bool, error) {
	return m.id.MatchesCertificate(leaf)
}
