package keys

import (
	"net/url"
	"strings"
)

// RedactKeyID returns keyID fit to quote in a message or a log: the value of
// every attribute that may hold a secret is replaced by "...". Such an
// attribute is one whose name, percent-decoded and in any case, is
// pin-value (RFC 7512 section 2.3, in the path or the query of a PKCS#11
// URI) or mentions a PIN or a password (pin=, PIN_VALUE=, password=): key
// ids are typed by people, and a misspelt or misplaced pin-value is still a
// PIN. Attributes are the parts of keyID separated by ';', '?' and '&'.
func RedactKeyID(keyID string) string {
	var b strings.Builder
	start := 0
	for i := 0; i <= len(keyID); i++ {
		if i < len(keyID) && !strings.ContainsRune(";?&", rune(keyID[i])) {
			continue
		}
		b.WriteString(redactAttr(keyID[start:i]))
		if i < len(keyID) {
			b.WriteByte(keyID[i])
		}
		start = i + 1
	}
	return b.String()
}

// redactAttr redacts one name=value attribute whose name suggests a secret.
// The scheme ("pkcs11:") stays on the first attribute's name.
func redactAttr(attr string) string {
	name, _, ok := strings.Cut(attr, "=")
	if !ok || !secretName(name) {
		return attr
	}
	return name + "=..."
}

// secretName reports whether an attribute name may label a secret.
func secretName(name string) bool {
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:] // pkcs11:pin-value=...
	}
	if d, err := url.PathUnescape(name); err == nil {
		name = d
	}
	n := strings.ToLower(name)
	if n == "pin-source" {
		return false // a file name, and what the messages point people to
	}
	return strings.Contains(n, "pin") || strings.Contains(n, "pass") || strings.Contains(n, "secret")
}
