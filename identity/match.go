package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"
)

// leafFacts is what identities are matched on, read once per leaf.
type leafFacts struct {
	leaf   *x509.Certificate
	uris   []string // URI SANs, normalised
	emails []string // rfc822Name SANs, normalised
	dnss   []string // dNSName SANs, normalised
	sanErr error

	// issuer is the Fulcio OIDC issuer; hasIssuer says the leaf carries
	// .1.8 or .1.1; issuerErr says they cannot be read or disagree.
	issuer    string
	hasIssuer bool
	issuerErr error
}

// General name tags of subjectAltName (RFC 5280 4.2.1.6).
const (
	tagRFC822 = 1
	tagDNS    = 2
	tagURI    = 6
)

func readLeaf(leaf *x509.Certificate) *leafFacts {
	f := &leafFacts{leaf: leaf}
	var v1, v2 []byte
	var have1, have2 bool
	for _, e := range leaf.Extensions {
		switch {
		case e.Id.Equal(oidSAN):
			f.sanErr = f.readSANs(e.Value)
		case e.Id.Equal(oidIssuerV2):
			v2, have2 = e.Value, true
		case e.Id.Equal(oidIssuerV1):
			v1, have1 = e.Value, true
		}
	}
	f.hasIssuer = have1 || have2
	// The issuer is .1.8 (a DER UTF8String) else .1.1 (raw bytes); a
	// certificate carrying both with different values is crafted, and
	// matches no identity (formats research A3, B4.7).
	switch {
	case have2:
		s, err := derUTF8String(v2)
		if err != nil {
			f.issuerErr = fmt.Errorf("its Fulcio issuer extension %s is not a DER UTF8String: %w", oidIssuerV2, err)
			return f
		}
		if have1 && string(v1) != s {
			f.issuerErr = fmt.Errorf("its Fulcio issuer extensions disagree: %s says %q, %s says %q", oidIssuerV2, s, oidIssuerV1, v1)
			return f
		}
		f.issuer = s
	case have1:
		if !utf8.Valid(v1) {
			f.issuerErr = fmt.Errorf("its Fulcio issuer extension %s is not UTF-8", oidIssuerV1)
			return f
		}
		f.issuer = string(v1)
	}
	return f
}

// readSANs reads the URI, e-mail and DNS names of a subjectAltName value as
// encoded (Go's parsed URL would re-encode them).
func (f *leafFacts) readSANs(der []byte) error {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil || len(rest) > 0 || seq.Tag != asn1.TagSequence {
		return fmt.Errorf("its subjectAltName extension is malformed")
	}
	b := seq.Bytes
	for len(b) > 0 {
		var gn asn1.RawValue
		b, err = asn1.Unmarshal(b, &gn)
		if err != nil {
			return fmt.Errorf("its subjectAltName extension is malformed")
		}
		if gn.Class != asn1.ClassContextSpecific {
			continue
		}
		switch gn.Tag {
		case tagRFC822:
			f.emails = append(f.emails, normaliseEmail(string(gn.Bytes)))
		case tagDNS:
			f.dnss = append(f.dnss, normaliseDNS(string(gn.Bytes)))
		case tagURI:
			f.uris = append(f.uris, normaliseURI(string(gn.Bytes)))
		}
	}
	return nil
}

// derUTF8String decodes a DER UTF8String with nothing after it (sigstore-go
// ParseDERString rejects trailing bytes too).
func derUTF8String(der []byte) (string, error) {
	var rv asn1.RawValue
	rest, err := asn1.Unmarshal(der, &rv)
	if err != nil {
		return "", err
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("%d trailing bytes", len(rest))
	}
	if rv.Class != asn1.ClassUniversal || rv.Tag != asn1.TagUTF8String || rv.IsCompound {
		return "", fmt.Errorf("tag %d is not UTF8String", rv.Tag)
	}
	if !utf8.Valid(rv.Bytes) {
		return "", fmt.Errorf("invalid UTF-8")
	}
	return string(rv.Bytes), nil
}

// normaliseURI lower-cases the scheme and host of a URI, leaving the rest
// (user information, port, path, query, fragment) as written: scheme and
// host are case-insensitive (RFC 3986 3.1, 3.2.2), the rest is not.
func normaliseURI(s string) string {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !validScheme(s[:colon]) {
		return s
	}
	out := strings.ToLower(s[:colon]) + ":"
	rest := s[colon+1:]
	if !strings.HasPrefix(rest, "//") {
		return out + rest
	}
	rest = rest[2:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	auth := rest[:end]
	hostStart := strings.LastIndexByte(auth, '@') + 1
	return out + "//" + auth[:hostStart] + strings.ToLower(auth[hostStart:]) + rest[end:]
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// normaliseEmail lower-cases the domain of an address; the local part is
// case-sensitive (RFC 5321 2.4).
func normaliseEmail(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at < 0 {
		return s
	}
	return s[:at+1] + strings.ToLower(s[at+1:])
}

// normaliseDNS lower-cases a DNS name and removes one trailing dot. A
// wildcard "*.x" stays a literal: "=" does not expand it.
func normaliseDNS(s string) string {
	return strings.TrimSuffix(strings.ToLower(s), ".")
}

// Match reports whether the leaf (signing) certificate satisfies every
// clause of the identity, with a reason naming the clause that failed (or
// the identity that matched). A leaf carrying a Fulcio issuer extension
// matches only identities that name that issuer.
func (id *Identity) Match(leaf *x509.Certificate) (bool, string) {
	return id.match(readLeaf(leaf))
}

func (id *Identity) match(f *leafFacts) (bool, string) {
	if f.hasIssuer {
		if f.issuerErr != nil {
			return false, fmt.Sprintf("the certificate matches no keyward identity: %v", f.issuerErr)
		}
		if !id.HasIssuer() {
			return false, fmt.Sprintf("the certificate was issued for OIDC issuer %q, and %q names no oidc.issuer", f.issuer, id.raw)
		}
	}
	for i := range id.clauses {
		if ok, why := id.clauses[i].match(f); !ok {
			return false, fmt.Sprintf("%q does not match: %s", id.raw, why)
		}
	}
	return true, fmt.Sprintf("the certificate matches %q", id.raw)
}

func (c *Clause) test(v string) bool {
	if c.re != nil {
		return c.re.MatchString(v)
	}
	return v == c.norm
}

func (c *Clause) what() string {
	if c.re != nil {
		return "matches " + c.re.String()
	}
	return fmt.Sprintf("equals %q", c.norm)
}

func (c *Clause) anySAN(vals []string, kind string, f *leafFacts) (bool, string) {
	if f.sanErr != nil {
		return false, f.sanErr.Error()
	}
	for _, v := range vals {
		if c.test(v) {
			return true, ""
		}
	}
	if len(vals) == 0 {
		return false, fmt.Sprintf("%s: the certificate has no %s SAN", c.Key, kind)
	}
	return false, fmt.Sprintf("%s: no %s SAN of the certificate %s (it has %q)", c.Key, kind, c.what(), vals)
}

func (c *Clause) match(f *leafFacts) (bool, string) {
	switch c.Key {
	case KeySANURI:
		return c.anySAN(f.uris, "URI", f)
	case KeySANEmail:
		return c.anySAN(f.emails, "e-mail", f)
	case KeySANDNS:
		return c.anySAN(f.dnss, "DNS", f)
	case KeyOIDCIssuer:
		if !f.hasIssuer {
			return false, "oidc.issuer: the certificate has no Fulcio issuer extension"
		}
		if f.issuer != c.norm {
			return false, fmt.Sprintf("oidc.issuer: the certificate was issued for %q, not %q", f.issuer, c.norm)
		}
		return true, ""
	case KeySPKISHA256:
		sum := sha256.Sum256(f.leaf.RawSubjectPublicKeyInfo)
		if got := base64.StdEncoding.EncodeToString(sum[:]); got != c.norm {
			return false, fmt.Sprintf("spki.sha256: the certificate's key hash is %s", got)
		}
		return true, ""
	case KeyCertSHA256:
		sum := sha256.Sum256(f.leaf.Raw)
		if got := hex.EncodeToString(sum[:]); got != c.norm {
			return false, fmt.Sprintf("cert.sha256: the certificate's hash is %s", got)
		}
		return true, ""
	case KeyPolicy:
		for _, p := range f.leaf.Policies {
			if p.String() == c.norm {
				return true, ""
			}
		}
		return false, fmt.Sprintf("policy: the certificate does not carry policy %s", c.norm)
	case KeySubject:
		ok, err := c.dn.MatchSubject(f.leaf)
		if err != nil {
			return false, "subject: " + err.Error()
		}
		if !ok {
			return false, fmt.Sprintf("subject: the certificate's subject %q does not contain %q", f.leaf.Subject.String(), c.Value)
		}
		return true, ""
	}
	// fulcio.<name>
	for _, e := range f.leaf.Extensions {
		if !e.Id.Equal(c.oid) {
			continue
		}
		v, err := derUTF8String(e.Value)
		if err != nil {
			return false, fmt.Sprintf("%s: extension %s is not a DER UTF8String: %v", c.Key, c.oid, err)
		}
		if !c.test(v) {
			return false, fmt.Sprintf("%s: the certificate's value %q does not match (the clause %s)", c.Key, v, c.what())
		}
		return true, ""
	}
	return false, fmt.Sprintf("%s: the certificate has no extension %s", c.Key, c.oid)
}

// X509SubjectPrefix is notation's own identity prefix, which keyward judges
// too when it is notation's verification plugin (notation then skips its
// own check: notation-go v1.3.2 verifier/verifier.go).
const X509SubjectPrefix = "x509.subject"

// Verdict is the outcome of judging a trustedIdentities list on a leaf.
type Verdict struct {
	// OK reports that some identity matched.
	OK bool
	// Matched is the identity that matched ("" when none did).
	Matched string
	// Reason says which identity matched, or why none did.
	Reason string
}

// Evaluate judges a policy's trustedIdentities list on the leaf (signing)
// certificate the way keyward's verification plugin does: the literal "*"
// matches anything (as notation treats it); x509.subject identities match
// with notation's DN-subset rule; keyward identities with [Identity.Match];
// identities of other prefixes belong to other plugins and are ignored.
// Identities are ORed. It fails closed: when no identity applies, or an
// identity cannot be parsed, it does not match. An [Evaluator] does the
// same with parsed identities kept for the next call.
func Evaluate(trusted []string, leaf *x509.Certificate, dn DNRules) Verdict {
	return NewEvaluator(dn).Evaluate(trusted, leaf)
}

// maxCachedIdentities bounds an Evaluator's cache: identities come from
// trust policies, a few per statement.
const maxCachedIdentities = 4096

// Evaluator is [Evaluate] for a long-lived caller (keyward verify's run):
// each identity string is parsed once. It is safe for concurrent use.
type Evaluator struct {
	dn     DNRules
	mu     sync.Mutex
	parsed map[string]parsedIdentity
}

// parsedIdentity is one trusted identity string, parsed.
type parsedIdentity struct {
	kw  *Identity // a keyward identity
	dn  DNMatcher // an x509.subject identity
	err error
}

// NewEvaluator returns an Evaluator that reads DNs with dn.
func NewEvaluator(dn DNRules) *Evaluator {
	return &Evaluator{dn: dn, parsed: map[string]parsedIdentity{}}
}

func (ev *Evaluator) parse(s, prefix, value string) parsedIdentity {
	ev.mu.Lock()
	p, ok := ev.parsed[s]
	ev.mu.Unlock()
	if ok {
		return p
	}
	switch {
	case prefix == Prefix:
		p.kw, p.err = Parse(s, ev.dn)
	case ev.dn == nil:
		p.err = fmt.Errorf("no DN rules to judge it")
	default:
		p.dn, p.err = ev.dn.ParseDN(value)
	}
	ev.mu.Lock()
	if len(ev.parsed) < maxCachedIdentities {
		ev.parsed[s] = p
	}
	ev.mu.Unlock()
	return p
}

// Evaluate is [Evaluate] with the Evaluator's DN rules and cache.
func (ev *Evaluator) Evaluate(trusted []string, leaf *x509.Certificate) Verdict {
	var (
		f       *leafFacts
		reasons []string
		applied bool
	)
	for _, s := range trusted {
		if s == "*" {
			return Verdict{OK: true, Matched: s, Reason: `the trusted identities are "*": any signer the trust stores vouch for`}
		}
	}
	for _, s := range trusted {
		prefix, value, _ := strings.Cut(s, ":")
		if prefix != X509SubjectPrefix && prefix != Prefix {
			continue // another plugin's
		}
		applied = true
		p := ev.parse(s, prefix, value)
		if p.err != nil {
			if prefix == Prefix {
				reasons = append(reasons, p.err.Error())
			} else {
				reasons = append(reasons, fmt.Sprintf("%q is not a valid identity: %v", s, p.err))
			}
			continue
		}
		if p.dn != nil {
			ok, err := p.dn.MatchSubject(leaf)
			switch {
			case err != nil:
				reasons = append(reasons, fmt.Sprintf("%q: %v", s, err))
			case ok:
				return Verdict{OK: true, Matched: s, Reason: fmt.Sprintf("the certificate matches %q", s)}
			default:
				reasons = append(reasons, fmt.Sprintf("%q does not match the certificate subject %q", s, leaf.Subject.String()))
			}
			continue
		}
		if f == nil {
			f = readLeaf(leaf)
		}
		ok, why := p.kw.match(f)
		if ok {
			return Verdict{OK: true, Matched: s, Reason: why}
		}
		reasons = append(reasons, why)
	}
	if !applied {
		return Verdict{Reason: "no trusted identity applies: the trust policy lists no x509.subject or keyward identity (keyward never treats that as a wildcard)"}
	}
	return Verdict{Reason: "the signing certificate matches none of the trusted identities: " + strings.Join(reasons, "; ")}
}
