package identity

import "fmt"

// ErrorKind says what is wrong with a keyward identity.
type ErrorKind string

// The kinds of [*ParseError].
const (
	// KindPrefix: the identity does not start with "keyward:".
	KindPrefix ErrorKind = "prefix"
	// KindEmpty: the identity has no clause.
	KindEmpty ErrorKind = "empty"
	// KindTooLong: the identity, a value or a pattern exceeds its bound.
	KindTooLong ErrorKind = "too-long"
	// KindSyntax: a clause is not key=value or key~value, or a quoted
	// value is not closed or has an unknown escape.
	KindSyntax ErrorKind = "syntax"
	// KindUnknownKey: the key is not one keyward defines.
	KindUnknownKey ErrorKind = "unknown-key"
	// KindOperator: the key does not allow the operator (only san.* and
	// fulcio.* accept "~").
	KindOperator ErrorKind = "operator"
	// KindValue: the value is not of the key's form (an OID, a hash, a
	// DN, an RE2 pattern).
	KindValue ErrorKind = "value"
	// KindIssuerRequired: a fulcio.* clause or a san.* pattern without an
	// oidc.issuer clause in the same identity.
	KindIssuerRequired ErrorKind = "issuer-required"
)

// ParseError is a keyward identity that cannot be used. Offset is the byte
// offset, in the identity string, of the clause (or value) at fault, so that
// a caller can point at it; Fix says how to correct it.
type ParseError struct {
	// Identity is the identity string as given.
	Identity string
	// Offset is the byte offset of the bad clause in Identity.
	Offset int
	// Kind classifies the problem.
	Kind ErrorKind
	// Msg describes the problem.
	Msg string
	// Fix says how to correct it.
	Fix string
	// Err is the underlying error (a regexp or DN error), if any.
	Err error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("keyward identity %q, at byte %d: %s", e.Identity, e.Offset, e.Msg)
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }
