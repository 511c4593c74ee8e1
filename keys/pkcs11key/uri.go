package pkcs11key

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/keyward/keyward/keys"
)

// maxURILength bounds a key id: a PKCS#11 URI names a token and an object
// with a few short attributes; kilobytes of it are a mistake or an attack.
const maxURILength = 4096

// URI is a parsed RFC 7512 PKCS#11 URI naming a signing key. Path attributes
// select the token and the key; query attributes say how to load the module
// and where the PIN is. Values are percent-decoded. A nil pointer or nil
// slice means the attribute is absent; an empty value is present and matches
// only an empty token or object field (RFC 7512 §2.3).
type URI struct {
	// Token attributes, compared with CK_TOKEN_INFO.
	Token        *string // token: the token label
	Manufacturer *string // manufacturer: the token's manufacturerID
	Serial       *string // serial: the token's serialNumber
	Model        *string // model: the token's model
	// SlotID is slot-id, a CK_SLOT_ID in decimal.
	SlotID *uint64
	// Object attributes, compared with the key's objects.
	Object *string // object: CKA_LABEL
	ID     []byte  // id: CKA_ID, raw bytes (nil if absent; empty if "id=")
	HasID  bool    // id is present (possibly empty)
	Type   string  // type: "private", "public", "cert", "secret-key", "data" or ""
	// Query attributes.
	ModulePath string // module-path: absolute path of the PKCS#11 library
	ModuleName string // module-name: library name without directory or suffix
	PINSource  string // pin-source: a file holding the PIN
}

// Attribute names (RFC 7512 §2.3).
const (
	attrToken        = "token"
	attrManufacturer = "manufacturer"
	attrSerial       = "serial"
	attrModel        = "model"
	attrSlotID       = "slot-id"
	attrObject       = "object"
	attrID           = "id"
	attrType         = "type"
	attrModulePath   = "module-path"
	attrModuleName   = "module-name"
	attrPINSource    = "pin-source"
	attrPINValue     = "pin-value"
)

// unsupportedStandard are RFC 7512 attributes keyward does not implement;
// they get their own message rather than "unknown".
var unsupportedStandard = map[string]bool{
	"library-manufacturer": true,
	"library-description":  true,
	"library-version":      true,
	"slot-description":     true,
	"slot-manufacturer":    true,
}

var (
	pathAttrs  = []string{attrToken, attrManufacturer, attrSerial, attrModel, attrSlotID, attrObject, attrID, attrType}
	queryAttrs = []string{attrModulePath, attrModuleName, attrPINSource}
)

// ParseURI parses a PKCS#11 URI key id (RFC 7512):
//
//	pkcs11:token=release;object=signing-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin
//
// Path attributes are separated by ';' and query attributes by '&'; each may
// appear once. Attribute names are case-sensitive, values percent-decoded.
// Unknown attributes are refused by name: RFC 7512 §3.3 lets a consumer that
// does not understand an attribute match nothing, and an error says why.
// pin-value is refused: the key id is visible in the signer's argv and in
// notation's signingkeys.json.
//
// Errors are [keys.KindInvalid] and quote the URI (which never holds a PIN
// once pin-value is refused: the error for it does not repeat the URI).
func ParseURI(s string) (*URI, error) {
	if len(s) > maxURILength {
		return nil, invalidf("PKCS#11 key id is %d bytes long, more than %d: name the token and the key with a few attributes, e.g. pkcs11:token=<label>;object=<key label>", len(s), maxURILength)
	}
	rest, ok := cutSchemeFold(s, "pkcs11:")
	if !ok {
		return nil, invalidf("key id %q is not a PKCS#11 URI: it must start with pkcs11:, e.g. pkcs11:token=<label>;object=<key label>", redact(s))
	}
	path, query, hasQuery := strings.Cut(rest, "?")
	// pin-value is checked first and alone, in the query where RFC 7512
	// section 2.3 puts it and in the path where people misplace it, and
	// messages quote the URI only through redact, so that no message
	// repeats a PIN.
	for _, a := range strings.FieldsFunc(rest, func(r rune) bool { return r == ';' || r == '&' || r == '?' }) {
		if name, _, _ := strings.Cut(a, "="); strings.EqualFold(name, attrPINValue) {
			return nil, invalidf("the PKCS#11 URI sets pin-value, which keyward refuses: the key id appears in the signer's command line (visible to every user in the process list) and in notation's signingkeys.json. " +
				"Put the PIN in a file readable only by you (chmod 600) and add pin-source=file:/path/to/pin to the URI's query, or export KEYWARD_PKCS11_PIN in notation's environment")
		}
	}
	if strings.IndexByte(rest, '#') >= 0 {
		return nil, invalidf("PKCS#11 URI %q has a fragment (#...), which RFC 7512 does not allow: percent-encode '#' as %%23 if it belongs to a value", redact(s))
	}
	u := &URI{}
	seen := map[string]bool{}
	if path != "" {
		for _, a := range strings.Split(path, ";") {
			if err := u.setAttr(redact(s), a, false, seen); err != nil {
				return nil, err
			}
		}
	}
	if hasQuery && query != "" {
		for _, a := range strings.Split(query, "&") {
			if err := u.setAttr(redact(s), a, true, seen); err != nil {
				return nil, err
			}
		}
	}
	return u, nil
}

// redact returns s with the values of query attributes other than
// module-path, module-name and pin-source replaced by "...", and in the
// path those keys.RedactKeyID hides (pin-value, pin=, ...): a misspelt or
// misplaced attribute may hold a PIN, and messages quote the URI.
func redact(s string) string {
	path, query, ok := strings.Cut(keys.RedactKeyID(s), "?")
	if !ok {
		return path
	}
	attrs := strings.Split(query, "&")
	for i, a := range attrs {
		name, _, hasValue := strings.Cut(a, "=")
		switch {
		case !hasValue && a != "":
			attrs[i] = "..."
		case hasValue && !contains(queryAttrs, name):
			attrs[i] = name + "=..."
		}
	}
	return path + "?" + strings.Join(attrs, "&")
}

// cutSchemeFold removes a case-insensitive scheme prefix (RFC 3986 §3.1:
// schemes are case-insensitive).
func cutSchemeFold(s, scheme string) (string, bool) {
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		return "", false
	}
	return s[len(scheme):], true
}

// setAttr sets one attribute; uri is the redacted URI, for messages.
func (u *URI) setAttr(uri, attr string, inQuery bool, seen map[string]bool) error {
	sep, where := ";", "path"
	if inQuery {
		sep, where = "&", "query"
	}
	name, raw, ok := strings.Cut(attr, "=")
	if !ok {
		if attr == "" {
			return invalidf("PKCS#11 URI %q has an empty attribute (a doubled or trailing %q)", uri, sep)
		}
		if inQuery { // never echo query text: it may be a PIN
			return invalidf("PKCS#11 URI %q: a query attribute has no '=': write name=value, with attributes separated by %q in the %s", uri, sep, where)
		}
		return invalidf("PKCS#11 URI %q: attribute %q has no value: write name=value, with attributes separated by %q in the %s", uri, attr, sep, where)
	}
	known := pathAttrs
	other := queryAttrs
	if inQuery {
		known, other = queryAttrs, pathAttrs
	}
	switch {
	case contains(known, name):
	case contains(other, name):
		otherWhere := "query (after '?', separated by '&')"
		if inQuery {
			otherWhere = "path (before '?', separated by ';')"
		}
		return invalidf("PKCS#11 URI %q: %s is a %s attribute: move it to the URI's %s", uri, name, map[bool]string{true: "path", false: "query"}[inQuery], otherWhere)
	case unsupportedStandard[name]:
		return invalidf("PKCS#11 URI %q: attribute %s is not supported by keyward: select the token with %s and the key with %s", uri, name, joinAttrs(pathAttrs[:5]), joinAttrs(pathAttrs[5:]))
	default:
		return invalidf("PKCS#11 URI %q: unknown attribute %q: keyward supports the path attributes %s and the query attributes %s", uri, name, joinAttrs(pathAttrs), joinAttrs(queryAttrs))
	}
	if seen[name] {
		return invalidf("PKCS#11 URI %q sets %s more than once (RFC 7512 allows each attribute once)", uri, name)
	}
	seen[name] = true
	value, err := percentDecode(raw, inQuery)
	if err != nil {
		return invalidf("PKCS#11 URI %q: attribute %s: %v", uri, name, err)
	}
	str := string(value)
	switch name {
	case attrToken:
		u.Token = &str
	case attrManufacturer:
		u.Manufacturer = &str
	case attrSerial:
		u.Serial = &str
	case attrModel:
		u.Model = &str
	case attrObject:
		u.Object = &str
	case attrID:
		u.ID, u.HasID = value, true
	case attrSlotID:
		n, err := strconv.ParseUint(str, 10, 64)
		if err != nil || str == "" || strings.TrimLeft(str, "0123456789") != "" {
			return invalidf("PKCS#11 URI %q: slot-id=%q is not a decimal number", uri, str)
		}
		u.SlotID = &n
	case attrType:
		switch str {
		case "private", "":
			u.Type = str
		case "public", "cert", "secret-key", "data":
			return invalidf("PKCS#11 URI %q: type=%s does not name a signing key: the key id names the private key, so use type=private or leave type out (keyward finds the key's public key and certificate by its id and label)", uri, str)
		default:
			return invalidf("PKCS#11 URI %q: type=%q is not an object type: RFC 7512 types are private, public, cert, secret-key and data; a signing key is type=private", uri, str)
		}
	case attrModulePath:
		if str == "" {
			return invalidf("PKCS#11 URI %q: module-path is empty: give the absolute path of the PKCS#11 library, e.g. module-path=/usr/lib/softhsm/libsofthsm2.so", uri)
		}
		u.ModulePath = str
	case attrModuleName:
		if str == "" || strings.ContainsRune(str, '/') {
			return invalidf("PKCS#11 URI %q: module-name=%q must be a library name without directory, e.g. module-name=softhsm2; use module-path for a full path", uri, str)
		}
		u.ModuleName = str
	case attrPINSource:
		if str == "" {
			return invalidf("PKCS#11 URI %q: pin-source is empty: give the absolute path of a file holding the PIN, e.g. pin-source=file:/run/secrets/pin", uri)
		}
		u.PINSource = str
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func joinAttrs(names []string) string { return strings.Join(names, ", ") }

// percentDecode decodes a URI attribute value, refusing characters that
// RFC 7512 §2.3 requires to be percent-encoded in that component
// (pk11-pchar in the path, pk11-qchar in the query) and malformed escapes.
func percentDecode(s string, inQuery bool) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) {
				return nil, fmt.Errorf("%q at offset %d is not a %%XX escape (two hex digits must follow '%%'; write '%%' itself as %%25)", s[i:], i)
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%q at offset %d is not a %%XX escape (two hex digits must follow '%%'; write '%%' itself as %%25)", s[i:i+3], i)
			}
			out = append(out, hi<<4|lo)
			i += 2
			continue
		}
		if !allowed(c, inQuery) {
			return nil, fmt.Errorf("character %q at offset %d must be percent-encoded as %%%02X", c, i, c)
		}
		out = append(out, c)
	}
	return out, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// allowed reports whether c may appear unencoded in a value (RFC 7512 §2.3):
// unreserved characters, pk11-res-avail, plus '&' in the path or '/', '?'
// and '|' in the query.
func allowed(c byte, inQuery bool) bool {
	if isUnreserved(c) {
		return true
	}
	switch c {
	case ':', '[', ']', '@', '!', '$', '\'', '(', ')', '*', '+', ',', '=':
		return true
	case '&':
		return !inQuery
	case '/', '?', '|':
		return inQuery
	}
	return false
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// String formats u as a PKCS#11 URI, attributes in a fixed order, values
// percent-encoded where RFC 7512 requires it and the id as %XX bytes, the
// form p11tool and `keyward keys list` print.
func (u *URI) String() string {
	var b strings.Builder
	b.WriteString("pkcs11:")
	var path []string
	add := func(name string, v *string) {
		if v != nil {
			path = append(path, name+"="+escape(*v, false))
		}
	}
	add(attrToken, u.Token)
	add(attrManufacturer, u.Manufacturer)
	add(attrModel, u.Model)
	add(attrSerial, u.Serial)
	if u.SlotID != nil {
		path = append(path, attrSlotID+"="+strconv.FormatUint(*u.SlotID, 10))
	}
	add(attrObject, u.Object)
	if u.HasID {
		var id strings.Builder
		for _, c := range u.ID {
			fmt.Fprintf(&id, "%%%02x", c)
		}
		path = append(path, attrID+"="+id.String())
	}
	if u.Type != "" {
		path = append(path, attrType+"="+u.Type)
	}
	b.WriteString(strings.Join(path, ";"))
	var query []string
	for _, q := range []struct{ name, v string }{
		{attrModulePath, u.ModulePath}, {attrModuleName, u.ModuleName}, {attrPINSource, u.PINSource},
	} {
		if q.v != "" {
			query = append(query, q.name+"="+escape(q.v, true))
		}
	}
	if len(query) > 0 {
		b.WriteString("?")
		b.WriteString(strings.Join(query, "&"))
	}
	return b.String()
}

func escape(s string, inQuery bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		// '&' is legal in the path but escaped anyway so that the URI
		// survives being pasted into a shell or a query string.
		if allowed(c, inQuery) && c != '&' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// describe lists the attributes u selects by, for messages.
func (u *URI) describe() string {
	var parts []string
	q := func(name string, v *string) {
		if v != nil {
			parts = append(parts, fmt.Sprintf("%s=%q", name, *v))
		}
	}
	q(attrToken, u.Token)
	q(attrManufacturer, u.Manufacturer)
	q(attrModel, u.Model)
	q(attrSerial, u.Serial)
	if u.SlotID != nil {
		parts = append(parts, fmt.Sprintf("%s=%d", attrSlotID, *u.SlotID))
	}
	q(attrObject, u.Object)
	if u.HasID {
		parts = append(parts, fmt.Sprintf("%s=%s", attrID, hexID(u.ID)))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "(no attributes: every key)"
	}
	return strings.Join(parts, " ")
}

// hexID formats a CKA_ID for people: hex, as pkcs11-tool --id takes it.
func hexID(id []byte) string {
	if len(id) == 0 {
		return `""`
	}
	return fmt.Sprintf("%x", id)
}

// isHexText reports whether an id looks like hex text ("01", "a1b2"): the
// common mistake of writing pkcs11-tool's --id value into a URI, where
// id is percent-encoded bytes.
func isHexText(id []byte) bool {
	if len(id) == 0 || len(id)%2 != 0 {
		return false
	}
	for _, c := range id {
		if _, ok := unhex(c); !ok {
			return false
		}
	}
	return true
}

// percentHex turns hex text into the percent-encoded bytes it denotes:
// "01a2" → "%01%a2".
func percentHex(h string) string {
	var b strings.Builder
	for i := 0; i+1 < len(h); i += 2 {
		b.WriteString("%" + h[i:i+2])
	}
	return b.String()
}
