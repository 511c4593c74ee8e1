package policy

import (
	"github.com/keyward/keyward/internal/jsonpos"

	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/keyward/keyward/identity"
)

// RuleIdentityKeyward is a keyward: identity that does not parse (an
// unknown key, a bad value or pattern, a pattern without oidc.issuer).
// notation accepts any prefix unchecked; keyward, which owns this one,
// checks it.
const RuleIdentityKeyward = "identity-keyward-invalid"

// Lint rules about keyward: identities (see [identity.Identity.Lint]).
const (
	LintKeywardHostPattern = "lint-" + identity.LintHostNotLiteral
	LintKeywardAnyPath     = "lint-" + identity.LintAnyPath
	LintKeywardCaseFold    = "lint-" + identity.LintCaseFold
	LintKeywardNoIssuer    = "lint-" + identity.LintNoIssuer
	LintKeywardIssuerOnly  = "lint-" + identity.LintIssuerOnly
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

// IsKeyward reports whether the identity has the keyward: prefix.
func (i Identity) IsKeyward() bool { return i.prefix == identity.Prefix }

// Keyward parses a keyward: identity (an error for other identities, and
// for keyward identities that did not validate).
func (i Identity) Keyward() (*identity.Identity, error) {
	return identity.Parse(i.raw, SubjectRules())
}

// checkKeywardIdentity reports a keyward: identity that does not parse,
// positioned at the bad clause inside the JSON string.
func (v *validator) checkKeywardIdentity(statement, ptr string, e *jsonpos.Node) {
	_, err := identity.Parse(e.Str, SubjectRules())
	var pe *identity.ParseError
	if !errors.As(err, &pe) {
		return
	}
	p := v.at(Problem{Rule: RuleIdentityKeyward, Pointer: ptr, Statement: statement,
		Message: fmt.Sprintf("trust policy statement %q has keyward identity %q with an invalid clause at character %d: %s",
			statement, e.Str, utf8.RuneCountInString(e.Str[:pe.Offset])+1, pe.Msg),
		Fix: pe.Fix}, e)
	p.Line, p.Column = v.lines.Position(v.lines.InString(e.Off, pe.Offset))
	v.add(p)
}

// keywardIdentities lints the keyward: identities of a statement.
func (l *linter) keywardIdentities(s *Statement) {
	idsPtr := s.pointer + "/trustedIdentities"
	for j, id := range s.identities {
		if !id.IsKeyward() {
			continue
		}
		kid, err := id.Keyward()
		if err != nil {
			continue // validation reported it
		}
		for _, w := range kid.Lint() {
			ptr := idsPtr + "/" + strconv.Itoa(j)
			before := len(l.out)
			l.add(s, SeverityWarning, "lint-"+w.Rule, ptr, strconv.Quote(id.raw),
				fmt.Sprintf("keyward identity %q: %s", id.raw, w.Msg), w.Fix)
			if n := jsonpos.Lookup(l.d.root, ptr); n != nil {
				l.out[before].Line, l.out[before].Column = l.d.lines.Position(l.d.lines.InString(n.Off, w.Offset))
			}
		}
	}
}

// keywardInfo describes a keyward: identity in words.
func keywardInfo(id Identity) (IdentityInfo, bool) {
	if !id.IsKeyward() {
		return IdentityInfo{}, false
	}
	kid, err := id.Keyward()
	if err != nil {
		return IdentityInfo{}, false
	}
	return IdentityInfo{Identity: id.raw, Kind: identity.Prefix,
		Meaning: kid.Explain() + " (judged by keyward, as notation's verification plugin or in keyward verify)"}, true
}
