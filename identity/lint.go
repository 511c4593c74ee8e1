package identity

import (
	"fmt"
	"regexp/syntax"
	"strings"
)

// Lint rule names, as [Warning.Rule] carries them.
const (
	// LintHostNotLiteral: a san.uri pattern whose scheme://host/ is not
	// a literal, e.g. an unescaped '.' (formats research B4.2).
	LintHostNotLiteral = "keyward-uri-host-pattern"
	// LintAnyPath: a san.uri pattern that accepts any path after the host.
	LintAnyPath = "keyward-uri-any-path"
	// LintCaseFold: a pattern with (?i); keyward normalises case where
	// it is insignificant (B4.5).
	LintCaseFold = "keyward-case-insensitive"
	// LintNoIssuer: an identity naming SANs without the OIDC issuer that
	// vouched for them (B4.4).
	LintNoIssuer = "keyward-no-issuer"
	// LintIssuerOnly: an identity that names who vouched (oidc.issuer)
	// but not who signed: every identity of that issuer matches.
	LintIssuerOnly = "keyward-issuer-only"
)

// Warning is a lint finding about one identity.
type Warning struct {
	// Rule names the check.
	Rule string
	// Offset is the byte offset of the clause in the identity.
	Offset int
	// Msg describes the finding.
	Msg string
	// Fix says how to address it.
	Fix string
}

// Lint returns warnings about an identity that parses but is probably not
// what its author meant.
func (id *Identity) Lint() []Warning {
	var ws []Warning
	hasSAN := false
	for _, c := range id.clauses {
		if strings.HasPrefix(c.Key, "san.") {
			hasSAN = true
		}
		if c.Op != OpRegex {
			continue
		}
		if foldsCase(c.Value) {
			ws = append(ws, Warning{Rule: LintCaseFold, Offset: c.Offset,
				Msg: fmt.Sprintf("the pattern of %s is case-insensitive ((?i)): it also accepts values that differ in case where case matters (URI paths, e-mail local parts, Fulcio values)", c.Key),
				Fix: "remove (?i): keyward already lower-cases URI schemes and hosts, e-mail domains and DNS names before matching"})
		}
		if c.Key == KeySANURI {
			if msg, fix := uriHostProblem(c.Value); msg != "" {
				ws = append(ws, Warning{Rule: LintHostNotLiteral, Offset: c.Offset, Msg: msg, Fix: fix})
			} else if anyPath(c.Value) {
				ws = append(ws, Warning{Rule: LintAnyPath, Offset: c.Offset,
					Msg: "the san.uri pattern accepts any path on its host: any repository or workflow there would match",
					Fix: `spell out the path, e.g. https://github\.com/acme/app/\.github/workflows/release\.yml@refs/tags/v[0-9.]+`})
			}
		}
	}
	if id.HasIssuer() && !id.namesSigner() {
		ws = append(ws, Warning{Rule: LintIssuerOnly, Offset: 0,
			Msg: "the identity names the OIDC issuer but not the signer: every account, repository or workflow that issuer vouches for matches",
			Fix: `add a clause that names the signer: san.uri (a workflow), san.email, fulcio.source-repository-uri, or a key pin (spki.sha256)`})
	}
	if hasSAN && !id.HasIssuer() {
		ws = append(ws, Warning{Rule: LintNoIssuer, Offset: 0,
			Msg: "the identity names a SAN but no oidc.issuer: any CA in the trust stores that issues that SAN is trusted, whoever vouched for it",
			Fix: "add oidc.issuer=<issuer URL> for keyless (Fulcio) certificates; for a private CA, pin it with policy=<OID> or spki.sha256"})
	}
	return ws
}

func foldsCase(pattern string) bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return false
	}
	var walk func(*syntax.Regexp) bool
	walk = func(r *syntax.Regexp) bool {
		if r.Flags&syntax.FoldCase != 0 && (r.Op == syntax.OpLiteral || r.Op == syntax.OpCharClass) {
			return true
		}
		for _, s := range r.Sub {
			if walk(s) {
				return true
			}
		}
		return false
	}
	return walk(re) || strings.Contains(pattern, "(?i")
}

// uriHostProblem checks that a san.uri pattern starts with a literal
// scheme://host/ (formats research B5 rule 3): otherwise a lookalike host
// (githubXcom) or any host matches.
func uriHostProblem(p string) (msg, fix string) {
	const fixLiteral = `start the pattern with a literal scheme://host/ and escape its dots, e.g. https://github\.com/acme/`
	p = strings.TrimPrefix(p, "^")
	i := 0
	for i < len(p) && (p[i] >= 'a' && p[i] <= 'z' || p[i] >= 'A' && p[i] <= 'Z' || i > 0 && (p[i] >= '0' && p[i] <= '9' || p[i] == '+' || p[i] == '-')) {
		i++
	}
	if i == 0 || !strings.HasPrefix(p[i:], "://") {
		return "the san.uri pattern does not start with a literal scheme://", fixLiteral
	}
	i += 3
	start := i
	for i < len(p) && p[i] != '/' {
		c := p[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == ':' || c == '_':
			i++
		case c == '\\' && i+1 < len(p) && p[i+1] == '.':
			i += 2
		case c == '.':
			return fmt.Sprintf("the host of the san.uri pattern has an unescaped '.' (in %q), which matches any character: a lookalike host such as %q matches too",
				p[start:hostEnd(p, start)], strings.Replace(p[start:hostEnd(p, start)], ".", "X", 1)), fixLiteral
		default:
			return fmt.Sprintf("the host of the san.uri pattern is not a literal: %q is a pattern character there", c), fixLiteral
		}
	}
	if i == start || i >= len(p) {
		return "the san.uri pattern does not have a literal host followed by '/'", fixLiteral
	}
	return "", ""
}

func hostEnd(p string, start int) int {
	if j := strings.IndexByte(p[start:], '/'); j >= 0 {
		return start + j
	}
	return len(p)
}

// anyPath reports a pattern of the form scheme://host/.* (and the like).
func anyPath(p string) bool {
	p = strings.TrimSuffix(strings.TrimPrefix(p, "^"), "$")
	i := strings.Index(p, "://")
	if i < 0 {
		return false
	}
	j := strings.IndexByte(p[i+3:], '/')
	if j < 0 {
		return false
	}
	rest := p[i+3+j+1:]
	return rest == ".*" || rest == ".+" || rest == "(.*)" || rest == ""
}

// namesSigner reports whether an identity has a clause that names one
// signer rather than a class of them: a SAN, a key or certificate pin, a
// subject, a certificate policy, or a Fulcio field that names a repository,
// a workflow or a digest (not build-trigger or runner-environment, which
// many signers share).
func (id *Identity) namesSigner() bool {
	for _, c := range id.clauses {
		switch {
		case strings.HasPrefix(c.Key, "san."), c.Key == KeySPKISHA256, c.Key == KeyCertSHA256, c.Key == KeySubject, c.Key == KeyPolicy:
			return true
		case strings.HasPrefix(c.Key, FulcioKeyPrefix):
			name := strings.TrimPrefix(c.Key, FulcioKeyPrefix)
			if strings.HasSuffix(name, "-uri") || strings.Contains(name, "repository") || strings.HasSuffix(name, "-digest") || strings.HasSuffix(name, "-identifier") {
				return true
			}
		}
	}
	return false
}
