package dn

// ErrorKind says what is wrong with a distinguished name ([*Error]).
type ErrorKind string

// The ways a distinguished name is refused.
const (
	// KindUnsupportedHex is a '#'-encoded (BER) value, "=#".
	KindUnsupportedHex ErrorKind = "unsupported-hex"
	// KindSyntax is text that is not an RFC 4514 DN (go-ldap's error).
	KindSyntax ErrorKind = "syntax"
	// KindMultiValued is an RDN with several attributes joined by '+'.
	KindMultiValued ErrorKind = "multi-valued"
	// KindDuplicate is an attribute type given twice (Error.Attribute).
	KindDuplicate ErrorKind = "duplicate"
	// KindMissingMandatory lacks C, ST or O (Error.Attribute).
	KindMissingMandatory ErrorKind = "missing-mandatory"
)

// Error is a distinguished name notation does not accept. Its message is
// notation's (notation-go v1.3.2 internal/pkix/pkix.go).
type Error struct {
	// DN is the text that was parsed.
	DN   string
	Kind ErrorKind
	// Attribute is the attribute type a KindDuplicate or
	// KindMissingMandatory error is about.
	Attribute string
	msg       string
	err       error
}

// Error returns notation's message.
func (e *Error) Error() string { return e.msg }

// Unwrap returns the syntax error of a KindSyntax error, or nil.
func (e *Error) Unwrap() error { return e.err }
