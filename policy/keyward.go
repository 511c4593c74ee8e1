package policy

import (
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
func (v *validator) checkKeywardIdentity(statement, ptr string, e *node) {
	_, err := identity.Parse(e.str, SubjectRules())
	var pe *identity.ParseError
	if !errors.As(err, &pe) {
		return
	}
	p := v.at(Problem{Rule: RuleIdentityKeyward, Pointer: ptr, Statement: statement,
		Message: fmt.Sprintf("trust policy statement %q has keyward identity %q with an invalid clause at character %d: %s",
			statement, e.str, utf8.RuneCountInString(e.str[:pe.Offset])+1, pe.Msg),
		Fix: pe.Fix}, e)
	p.Line, p.Column = v.lines.position(stringOffset(v.lines.data, e.off, pe.Offset))
	v.add(p)
}

// stringOffset maps a byte offset in the decoded value of the JSON string
// literal at off (its opening quote) to the offset in the document of the
// character that encodes it.
func stringOffset(data []byte, off, target int) int {
	if off >= len(data) || data[off] != '"' {
		return off
	}
	i, decoded := off+1, 0
	for i < len(data) && data[i] != '"' && decoded < target {
		if data[i] != '\\' || i+1 >= len(data) {
			decoded++
			i++
			continue
		}
		if data[i+1] != 'u' || i+6 > len(data) {
			decoded++
			i += 2
			continue
		}
		r, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
		i += 6
		switch {
		case err != nil:
			decoded++
		case r >= 0xD800 && r < 0xDC00 && i+6 <= len(data) && data[i] == '\\' && data[i+1] == 'u':
			decoded += 4 // a surrogate pair encodes one 4-byte character
			i += 6
		case r >= 0xD800 && r < 0xE000:
			decoded += 3 // U+FFFD
		default:
			decoded += utf8.RuneLen(rune(r))
		}
	}
	return i
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
			if off, ok := offsetOf(l.d.root, ptr); ok {
				l.out[before].Line, l.out[before].Column = l.d.lines.position(stringOffset(l.d.lines.data, off, w.Offset))
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
