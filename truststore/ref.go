package truststore

import (
	"fmt"
	"regexp"
	"strings"
)

// Type is a trust store type (Notary Project specification, trust store
// and trust policy, "Trust Store"; notation-go v1.3.2
// verifier/truststore/truststore.go).
type Type string

// The trust store types notation knows, case-sensitive.
const (
	// TypeCA holds certificate authorities for notary.x509 signatures.
	TypeCA Type = "ca"
	// TypeSigningAuthority holds signing authorities for
	// notary.x509.signingAuthority signatures.
	TypeSigningAuthority Type = "signingAuthority"
	// TypeTSA holds the roots of timestamp authorities.
	TypeTSA Type = "tsa"
)

// Types returns the trust store types.
func Types() []Type { return []Type{TypeCA, TypeSigningAuthority, TypeTSA} }

// Valid reports whether t is a trust store type.
func (t Type) Valid() bool {
	switch t {
	case TypeCA, TypeSigningAuthority, TypeTSA:
		return true
	}
	return false
}

// nameRE is notation's rule for named stores (notation-go v1.3.2
// internal/file/file.go, IsValidFileName).
var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// ValidName reports whether name is a valid named store: [a-zA-Z0-9_.-]+.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Ref names one trust store, "<type>:<name>" in a policy.
type Ref struct {
	Type Type   `json:"type"`
	Name string `json:"name"`
}

// String returns "<type>:<name>".
func (r Ref) String() string { return string(r.Type) + ":" + r.Name }

// MarshalText encodes r as "<type>:<name>".
func (r Ref) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ParseRef parses "<type>:<name>" (split at the first ':'), with notation's
// rules for the type and the name.
func ParseRef(s string) (Ref, error) {
	t, n, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, fmt.Errorf("malformed trust store value %q: the required format is <TrustStoreType>:<TrustStoreName>", s)
	}
	if !Type(t).Valid() {
		return Ref{}, fmt.Errorf("unsupported trust store type %q in trust store value %q", t, s)
	}
	if !ValidName(n) {
		return Ref{}, fmt.Errorf("unsupported trust store name %q in trust store value %q: named store names follow [a-zA-Z0-9_.-]+", n, s)
	}
	return Ref{Type: Type(t), Name: n}, nil
}
