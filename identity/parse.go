package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DNRules are notation's x509.subject rules, which a subject= clause
// uses: the policy package provides them (policy.SubjectRules), so that a
// subject clause and an x509.subject identity are read by one parser.
type DNRules interface {
	// ParseDN checks a distinguished name as notation checks an
	// x509.subject identity value and returns its matcher.
	ParseDN(value string) (DNMatcher, error)
}

// DNMatcher is one parsed distinguished name.
type DNMatcher interface {
	// MatchSubject reports whether every attribute of the DN appears with
	// the same value in the leaf's subject (notation-go v1.3.2
	// verifier.verifyX509TrustedIdentities); an error when the leaf
	// subject is not a DN notation can read.
	MatchSubject(leaf *x509.Certificate) (bool, error)
}

// Clause is one key-operator-value test of an identity.
type Clause struct {
	// Key is the clause key, e.g. "san.uri" or "fulcio.build-trigger".
	Key string
	// Op is the operator.
	Op Op
	// Value is the value as written, unquoted and unescaped.
	Value string
	// Offset is the byte offset of the clause in the identity string.
	Offset int

	norm string         // the value compared by "=", normalised
	re   *regexp.Regexp // the anchored pattern of "~"
	oid  asn1.ObjectIdentifier
	dn   DNMatcher
}

// Identity is a parsed keyward identity: clauses that must all hold.
type Identity struct {
	raw     string
	clauses []Clause
}

// String returns the identity as written.
func (id *Identity) String() string { return id.raw }

// Clauses returns the clauses in written order.
func (id *Identity) Clauses() []Clause { return append([]Clause(nil), id.clauses...) }

// HasIssuer reports whether the identity names an OIDC issuer.
func (id *Identity) HasIssuer() bool {
	for _, c := range id.clauses {
		if c.Key == KeyOIDCIssuer {
			return true
		}
	}
	return false
}

// IsKeyward reports whether a trusted identity has the keyward prefix, as
// notation reads prefixes: the text before the first ':'.
func IsKeyward(s string) bool {
	p, _, ok := strings.Cut(s, ":")
	return ok && p == Prefix
}

// Parse parses a trusted identity "keyward: <clause> <clause> ...". dn
// reads subject= clauses; with a nil dn a subject clause is an error. Every
// error is a [*ParseError].
func Parse(s string, dn DNRules) (*Identity, error) {
	p := parser{s: s}
	if !IsKeyward(s) {
		return nil, p.fail(0, KindPrefix, fmt.Sprintf("the identity does not start with %q", Prefix+":"),
			fmt.Sprintf("write the identity as %q", Prefix+": san.uri=... oidc.issuer=..."), nil)
	}
	if len(s) > MaxIdentityLen {
		return nil, p.fail(0, KindTooLong, fmt.Sprintf("the identity is %d bytes long, more than the %d allowed", len(s), MaxIdentityLen),
			"split it into several identities (identities in the list are ORed)", nil)
	}
	if !utf8.ValidString(s) {
		return nil, p.fail(0, KindSyntax, "the identity is not valid UTF-8", "write the identity in UTF-8", nil)
	}
	p.i = len(Prefix) + 1
	id := &Identity{raw: s}
	for {
		p.skipSpace()
		if p.i >= len(s) {
			break
		}
		if len(id.clauses) == MaxClauses {
			return nil, p.fail(p.i, KindTooLong, fmt.Sprintf("the identity has more than %d clauses", MaxClauses),
				"remove clauses, or split the identity into several", nil)
		}
		c, err := p.clause(dn)
		if err != nil {
			return nil, err
		}
		id.clauses = append(id.clauses, c)
	}
	if len(id.clauses) == 0 {
		return nil, p.fail(len(s), KindEmpty, "the identity has no clause",
			`add clauses such as "oidc.issuer=<issuer> san.uri=<workflow URI>" or "spki.sha256=<base64 key hash>"`, nil)
	}
	if !id.HasIssuer() {
		// formats research B4.4: a SAN or Fulcio claim means nothing
		// without the OIDC issuer that vouched for it; cosign,
		// policy-controller and sigstore-go all require one.
		for _, c := range id.clauses {
			_, fulcio := fulcioKey(c.Key)
			if fulcio || (c.Op == OpRegex && strings.HasPrefix(c.Key, "san.")) {
				what := "a fulcio.* clause"
				if !fulcio {
					what = "a " + c.Key + " pattern"
				}
				return nil, p.fail(c.Offset, KindIssuerRequired,
					fmt.Sprintf("clause %s%s... is %s, which needs an oidc.issuer clause in the same identity", c.Key, c.Op, what),
					"add oidc.issuer=<issuer URL> (e.g. oidc.issuer=https://token.actions.githubusercontent.com) to this identity", nil)
			}
		}
	}
	return id, nil
}

type parser struct {
	s string
	i int
}

func (p *parser) fail(off int, kind ErrorKind, msg, fix string, err error) *ParseError {
	return &ParseError{Identity: p.s, Offset: off, Kind: kind, Msg: msg, Fix: fix, Err: err}
}

func (p *parser) skipSpace() {
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if !unicode.IsSpace(r) {
			return
		}
		p.i += n
	}
}

func isKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c >= 'A' && c <= 'Z'
}

// clause reads key op value at p.i.
func (p *parser) clause(dn DNRules) (Clause, error) {
	start := p.i
	for p.i < len(p.s) && isKeyByte(p.s[p.i]) {
		p.i++
	}
	key := p.s[start:p.i]
	if key == "" || p.i >= len(p.s) || (p.s[p.i] != '=' && p.s[p.i] != '~') {
		word := p.s[start:]
		if j := strings.IndexFunc(word, unicode.IsSpace); j >= 0 {
			word = word[:j]
		}
		if key == "" {
			return Clause{}, p.fail(start, KindSyntax, fmt.Sprintf("%q is not a clause: a clause is key=value or key~value", word),
				"start each clause with a key such as san.uri, san.email, oidc.issuer or spki.sha256", nil)
		}
		return Clause{}, p.fail(start, KindSyntax, fmt.Sprintf("clause %q has no operator", word),
			fmt.Sprintf(`write %s=<value> (exact) or %s~<pattern> (RE2, anchored); quote values with spaces: %s="a b"`, key, key, key), nil)
	}
	op := Op(p.s[p.i])
	p.i++
	if !knownKey(key) {
		return Clause{}, p.fail(start, KindUnknownKey, fmt.Sprintf("unknown key %q", key), unknownKeyFix(key), nil)
	}
	if op == OpRegex && !allowsRegex(key) {
		return Clause{}, p.fail(start, KindOperator, fmt.Sprintf("key %s takes only exact values (=), not patterns (~)", key),
			fmt.Sprintf("write %s=<value>; for several accepted values, list several identities", key), nil)
	}
	valStart := p.i
	value, err := p.value()
	if err != nil {
		return Clause{}, err
	}
	c := Clause{Key: key, Op: op, Value: value, Offset: start}
	if value == "" {
		return Clause{}, p.fail(valStart, KindValue, fmt.Sprintf("clause %s%s has an empty value", key, op),
			fmt.Sprintf("give %s a value", key), nil)
	}
	if err := p.compile(&c, valStart, dn); err != nil {
		return Clause{}, err
	}
	return c, nil
}

// value reads a bare value (up to white space) or a double-quoted value
// with \" and \\ escapes.
func (p *parser) value() (string, error) {
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '"' {
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			c := p.s[p.i]
			switch {
			case c == '"':
				p.i++
				if p.i < len(p.s) {
					if r, _ := utf8.DecodeRuneInString(p.s[p.i:]); !unicode.IsSpace(r) {
						return "", p.fail(p.i, KindSyntax, "a quoted value must be followed by white space or the end of the identity",
							"put a space between clauses", nil)
					}
				}
				return b.String(), nil
			case c == '\\':
				if p.i+1 < len(p.s) && (p.s[p.i+1] == '"' || p.s[p.i+1] == '\\') {
					b.WriteByte(p.s[p.i+1])
					p.i += 2
					continue
				}
				return "", p.fail(p.i, KindSyntax, `a quoted value allows only the escapes \" and \\`,
					`write a backslash as \\ inside quotes (a pattern's \. is \\. there), or leave the value bare`, nil)
			case c < 0x20 || c == 0x7f:
				return "", p.fail(p.i, KindSyntax, "a value cannot contain control characters", "remove the control character", nil)
			default:
				b.WriteByte(c)
				p.i++
			}
		}
		return "", p.fail(start, KindSyntax, "the quoted value is not closed", `end the value with '"'`, nil)
	}
	for p.i < len(p.s) {
		r, n := utf8.DecodeRuneInString(p.s[p.i:])
		if unicode.IsSpace(r) {
			break
		}
		if r < 0x20 || r == 0x7f {
			return "", p.fail(p.i, KindSyntax, "a value cannot contain control characters", "remove the control character", nil)
		}
		p.i += n
	}
	return p.s[start:p.i], nil
}

// compile checks a clause's value against its key and prepares matching.
func (p *parser) compile(c *Clause, off int, dn DNRules) error {
	if name, ok := fulcioKey(c.Key); ok {
		c.oid, _ = FulcioOID(name)
	}
	if c.Op == OpRegex {
		if len(c.Value) > MaxPatternLen {
			return p.fail(off, KindTooLong, fmt.Sprintf("the pattern of %s is %d bytes long, more than the %d allowed", c.Key, len(c.Value), MaxPatternLen),
				"shorten the pattern, or list several identities", nil)
		}
		// Anchored so that a pattern can never match a substring: an
		// unanchored workflow pattern accepts "...?x=<real identity>"
		// (formats research B4.1; cosign does not anchor). The pattern
		// must parse on its own first: with unbalanced parentheses,
		// "x)|(.*" would close the anchoring group and compile as
		// ^(?:x)|(.*)$, which matches anything.
		_, err := syntax.Parse(c.Value, syntax.Perl)
		var re *regexp.Regexp
		if err == nil {
			re, err = regexp.Compile("^(?:" + c.Value + ")$")
		}
		if err != nil {
			return p.fail(off, KindValue, fmt.Sprintf("the pattern of %s is not an RE2 expression: %v", c.Key, err),
				"fix the pattern (RE2 syntax, https://github.com/google/re2/wiki/Syntax); it is matched whole, no ^ or $ needed", err)
		}
		c.re = re
		return nil
	}
	switch c.Key {
	case KeySANURI:
		c.norm = normaliseURI(c.Value)
	case KeySANEmail:
		c.norm = normaliseEmail(c.Value)
	case KeySANDNS:
		c.norm = normaliseDNS(c.Value)
	case KeyOIDCIssuer:
		c.norm = c.Value
	case KeySPKISHA256:
		raw, err := base64.StdEncoding.DecodeString(c.Value)
		if err != nil || len(raw) != sha256.Size || base64.StdEncoding.EncodeToString(raw) != c.Value {
			return p.fail(off, KindValue, fmt.Sprintf("spki.sha256 value %q is not the standard base64 (padded) of a SHA-256 hash", c.Value),
				"give the 44-character base64 SHA-256 of the key's DER SubjectPublicKeyInfo (openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64)", err)
		}
		c.norm = c.Value
	case KeyCertSHA256:
		raw, err := hex.DecodeString(c.Value)
		if err != nil || len(raw) != sha256.Size {
			return p.fail(off, KindValue, fmt.Sprintf("cert.sha256 value %q is not the hex of a SHA-256 hash", c.Value),
				"give the 64 hex digits of the SHA-256 of the certificate's DER (notation's thumbprint form, e.g. openssl x509 -outform der | sha256sum)", err)
		}
		c.norm = strings.ToLower(c.Value)
	case KeyPolicy:
		if err := checkOID(c.Value); err != nil {
			return p.fail(off, KindValue, fmt.Sprintf("policy value %q is not a dotted-decimal OID: %v", c.Value, err),
				"give the certificate policy OID in dotted decimal, e.g. policy=1.3.6.1.4.1.99999.1.2", err)
		}
		c.norm = c.Value
	case KeySubject:
		if dn == nil {
			return p.fail(off, KindValue, "subject clauses need notation's DN rules, which the caller did not provide",
				"parse the identity with policy.SubjectRules()", nil)
		}
		m, err := dn.ParseDN(c.Value)
		if err != nil {
			return p.fail(off, KindValue, fmt.Sprintf("subject value %q is not a DN notation accepts: %v", c.Value, err),
				`quote the DN and give C, ST and O at least: subject="C=US, ST=WA, O=acme"`, err)
		}
		c.dn = m
	default: // fulcio.<name>: exact, as the DER UTF8String holds it
		c.norm = c.Value
	}
	return nil
}

// checkOID accepts a dotted-decimal OID as RFC 5280 certificatePolicies
// carry them: two arcs at least, the first 0, 1 or 2, no leading zeros.
func checkOID(s string) error {
	arcs := strings.Split(s, ".")
	if len(arcs) < 2 {
		return fmt.Errorf("an OID has at least two arcs")
	}
	for i, a := range arcs {
		if a == "" || (len(a) > 1 && a[0] == '0') {
			return fmt.Errorf("arc %d %q is not a decimal number without leading zeros", i+1, a)
		}
		for _, c := range a {
			if c < '0' || c > '9' {
				return fmt.Errorf("arc %d %q is not a decimal number", i+1, a)
			}
		}
		if _, err := strconv.ParseUint(a, 10, 63); err != nil {
			return fmt.Errorf("arc %d %q is too large", i+1, a)
		}
	}
	if arcs[0] != "0" && arcs[0] != "1" && arcs[0] != "2" {
		return fmt.Errorf("the first arc must be 0, 1 or 2")
	}
	return nil
}

// unknownKeyFix names the closest key, and lists the keys (the Fulcio
// names when the key starts with "fulcio.").
func unknownKeyFix(key string) string {
	best, bestD := "", 4
	for _, k := range Keys() {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	list := "keys are " + strings.Join([]string{KeySANURI, KeySANEmail, KeySANDNS, KeyOIDCIssuer, FulcioKeyPrefix + "<name>",
		KeySPKISHA256, KeyCertSHA256, KeyPolicy, KeySubject}, ", ")
	if strings.HasPrefix(key, FulcioKeyPrefix) {
		list = "Fulcio names are " + strings.Join(FulcioNames(), ", ")
	}
	if best != "" {
		return fmt.Sprintf("did you mean %s? %s", best, list)
	}
	return list
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
