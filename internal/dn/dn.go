// Package dn parses distinguished names the way notation reads
// x509.subject trusted identities and leaf certificate subjects
// (notation-go v1.3.2 internal/pkix/pkix.go, on top of go-ldap v3.4.10's
// ParseDN), and finds the identities of a statement that are subsets of one
// another without comparing every pair.
package dn

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// DN is a distinguished name as notation reads trusted identities and leaf
// certificate subjects: a set of attribute types (case-sensitive, S read as
// ST) each with one value. Order does not matter when DNs are compared.
type DN struct {
	types  []string          // in document order
	values map[string]string // type -> value
}

// mandatoryTypes are the attributes every trusted identity and leaf subject
// must have (Notary Project specification, trust store and trust policy,
// "Trusted Identities Constraints").
var mandatoryTypes = [...]string{"C", "ST", "O"}

// Parse parses a distinguished name with the rules notation applies to
// x509.subject trusted identities: RFC 4514 syntax as read by go-ldap v3.4.10
// (',' or ';' between RDNs, values unescaped and trimmed), no '#'-encoded
// values, no multi-valued RDNs, no repeated attribute type, and C, ST (or S)
// and O present with non-empty values. Errors are [*Error] values with
// notation's messages.
func Parse(s string) (DN, error) {
	if strings.Contains(s, "=#") {
		return DN{}, &Error{DN: s, Kind: KindUnsupportedHex,
			msg: fmt.Sprintf("unsupported distinguished name (DN) %q: notation does not support x509.subject identities containing \"=#\"", s)}
	}
	rdns, err := splitRDNs(s)
	if err != nil {
		return DN{}, &Error{DN: s, Kind: KindSyntax, err: err,
			msg: fmt.Sprintf("parsing distinguished name (DN) %q failed with err: %v. A valid DN must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum, and follow RFC 4514 standard", s, err)}
	}
	d := DN{values: make(map[string]string, len(rdns))}
	for _, rdn := range rdns {
		if len(rdn) > 1 {
			return DN{}, &Error{DN: s, Kind: KindMultiValued,
				msg: fmt.Sprintf("distinguished name (DN) %q has multi-valued RDN attributes, remove multi-valued RDN attributes as they are not supported", s)}
		}
		a := rdn[0]
		if a.Type == "S" { // stateOrProvinceName alias
			a.Type = "ST"
		}
		// notation treats an attribute seen with an empty value as unseen.
		if d.values[a.Type] != "" {
			return DN{}, &Error{DN: s, Kind: KindDuplicate, Attribute: a.Type,
				msg: fmt.Sprintf("distinguished name (DN) %q has duplicate RDN attribute for %q, DN can only have unique RDN attributes", s, a.Type)}
		}
		if _, seen := d.values[a.Type]; !seen {
			d.types = append(d.types, a.Type)
		}
		d.values[a.Type] = a.Value
	}
	for _, t := range mandatoryTypes {
		if d.values[t] == "" {
			return DN{}, &Error{DN: s, Kind: KindMissingMandatory, Attribute: t,
				msg: fmt.Sprintf("distinguished name (DN) %q has no mandatory RDN attribute for %q, it must contain 'C', 'ST' or 'S', and 'O' RDN attributes at a minimum", s, t)}
		}
	}
	return d, nil
}

// Attribute is one attribute of a [DN].
type Attribute struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Attributes returns the attributes in the order they were written.
func (d DN) Attributes() []Attribute {
	out := make([]Attribute, len(d.types))
	for i, t := range d.types {
		out[i] = Attribute{Type: t, Value: d.values[t]}
	}
	return out
}

// Value returns the value of attribute type t ("" if absent).
func (d DN) Value(t string) string { return d.values[t] }

// Len is the number of attributes.
func (d DN) Len() int { return len(d.types) }

// IsZero reports whether d holds no attribute.
func (d DN) IsZero() bool { return len(d.types) == 0 }

// SubsetOf reports whether every attribute of d appears in o with the same
// value: notation's match of a trusted identity against a leaf subject, and
// its overlap rule between trusted identities.
func (d DN) SubsetOf(o DN) bool {
	for t, v := range d.values {
		if o.values[t] != v {
			return false
		}
	}
	return true
}

// Overlaps reports whether one certificate subject could match both d and
// o: they give the same value to every attribute type they share. This is
// the specification's overlap ("trusted identities ... MUST NOT overlap");
// notation-go only detects the case where one is a subset of the other.
func (d DN) Overlaps(o DN) bool {
	for t, v := range d.values {
		if w, ok := o.values[t]; ok && w != v {
			return false
		}
	}
	return true
}

// Union returns the attributes of a followed by those of b that a lacks:
// the subject of a certificate that matches both when they overlap.
func Union(a, b DN) DN {
	u := DN{values: make(map[string]string, len(a.values)+len(b.values))}
	for _, d := range []DN{a, b} {
		for _, t := range d.types {
			if _, ok := u.values[t]; !ok {
				u.types = append(u.types, t)
				u.values[t] = d.values[t]
			}
		}
	}
	return u
}

// String renders d in RFC 4514 form with the attributes in their written
// order, escaping as the specification's trusted identity examples do.
func (d DN) String() string {
	parts := make([]string, len(d.types))
	for i, t := range d.types {
		parts[i] = escapeText(t) + "=" + escapeText(d.values[t])
	}
	return strings.Join(parts, ", ")
}

// Map returns the attributes as notation's parsed map (for messages that
// print it, as notation prints a map[string]string).
func (d DN) Map() map[string]string {
	m := make(map[string]string, len(d.values))
	for k, v := range d.values {
		m[k] = v
	}
	return m
}

// escapeText escapes a DN type or value so that Parse reads it back:
// the RFC 4514 specials are backslash-escaped, leading and trailing spaces
// too. A '#' is escaped so that "=#" never appears.
func escapeText(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' && (i == 0 || i == len(s)-1):
			b.WriteString(`\ `)
		case strings.IndexByte(`"#+,;<=>\`, c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// splitRDNs reads RDNs exactly as go-ldap v3.4.10 ParseDN does, including
// its quirks: a blank string is an empty DN, a type is set by the first '='
// while the type is still empty, a backslash hides the next byte from the
// separator scan, and types and values are trimmed of spaces and unescaped.
func splitRDNs(s string) ([][]Attribute, error) {
	var rdns [][]Attribute
	if strings.TrimSpace(s) == "" {
		return rdns, nil
	}
	var (
		rdn      []Attribute
		typ      string
		haveType bool // go-ldap tests len(Type) != 0
		escaping bool
		start    int
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaping:
			escaping = false
		case c == '\\':
			escaping = true
		case c == '=' && !haveType:
			t, err := decodeDNString(s[start:i])
			if err != nil {
				return nil, err
			}
			typ, haveType = t, t != ""
			start = i + 1
		case c == ',' || c == '+' || c == ';':
			if !haveType {
				return nil, errors.New("incomplete type, value pair")
			}
			v, err := decodeDNValue(s[start:i])
			if err != nil {
				return nil, err
			}
			rdn = append(rdn, Attribute{Type: typ, Value: v})
			typ, haveType = "", false
			start = i + 1
			if c != '+' {
				rdns = append(rdns, rdn)
				rdn = nil
			}
		}
	}
	if !haveType {
		return nil, errors.New("DN ended with incomplete type, value pair")
	}
	v, err := decodeDNValue(s[start:])
	if err != nil {
		return nil, err
	}
	rdn = append(rdn, Attribute{Type: typ, Value: v})
	return append(rdns, rdn), nil
}

func decodeDNValue(s string) (string, error) {
	if len(s) > 0 && s[0] == '#' {
		// A BER-encoded value; unreachable behind Parse's "=#" check.
		return "", errors.New("hex-encoded values are not supported")
	}
	return decodeDNString(s)
}

// trimDNSpaces trims ASCII spaces, keeping a trailing space that a trailing
// backslash escapes (go-ldap's rule, which looks only at the last byte).
func trimDNSpaces(in string) string {
	out := strings.Trim(in, " ")
	if len(out) > 0 && out[len(out)-1] == '\\' && in[len(in)-1] == ' ' {
		out += " "
	}
	return out
}

// decodeDNString trims and unescapes a type or value: '\' followed by one
// of ` "#+,;<=>\` is that character; otherwise '\' and two hexadecimal
// digits are a byte. Errors carry go-ldap's wording.
func decodeDNString(in string) (string, error) {
	if strings.IndexByte(in, '\\') < 0 && utf8.ValidString(in) {
		return trimDNSpaces(in), nil // nothing to unescape or replace
	}
	s := []rune(trimDNSpaces(in))
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		r := s[i]
		if r != '\\' {
			b.WriteRune(r)
			continue
		}
		if i+1 >= len(s) {
			return "", fmt.Errorf("got corrupted escaped character: '%s'", string(s))
		}
		switch n := s[i+1]; n {
		case ' ', '"', '#', '+', ',', ';', '<', '=', '>', '\\':
			b.WriteRune(n)
			i++
			continue
		}
		if i+2 >= len(s) {
			return "", errors.New("failed to decode escaped character: encoding/hex: invalid byte: " + string(s[i+1]))
		}
		pair := string(s[i+1 : i+3])
		if len(pair) != 2 {
			return "", errors.New("failed to decode escaped character: invalid byte: " + pair)
		}
		hi, ok := hexNibble(pair[0])
		if !ok {
			return "", fmt.Errorf("failed to decode escaped character: encoding/hex: invalid byte: %#U", rune(pair[0]))
		}
		lo, ok := hexNibble(pair[1])
		if !ok {
			return "", fmt.Errorf("failed to decode escaped character: encoding/hex: invalid byte: %#U", rune(pair[1]))
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func hexNibble(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
