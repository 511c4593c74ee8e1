package policy

import (
	"fmt"
	"strings"

	"github.com/keyward/keyward/internal/dn"
)

// FileErrorKind says why a policy file cannot be read ([*FileError]).
type FileErrorKind string

// The ways reading a policy file fails.
const (
	// FileNotFound: nothing at the path.
	FileNotFound FileErrorKind = "not-found"
	// FileNotRegular: a directory, a symlink, a device or a pipe.
	FileNotRegular FileErrorKind = "not-regular-file"
	// FileTooLarge: more than [MaxDocumentSize] bytes.
	FileTooLarge FileErrorKind = "too-large"
	// FileUnreadable: a permission or I/O error.
	FileUnreadable FileErrorKind = "unreadable"
)

// FileError is a policy file that cannot be read at all (as opposed to a
// document with problems, a [*ValidationError]). Messages for the cases
// notation checks are notation's (notation-go v1.3.2
// verifier/trustpolicy/trustpolicy.go, getDocument).
type FileError struct {
	Path string
	Kind FileErrorKind
	msg  string
	err  error
}

// Error returns the path, the message and the cause, if any.
func (e *FileError) Error() string {
	msg := e.Path + ": " + e.msg
	if e.err != nil {
		msg += ": " + e.err.Error()
	}
	return msg
}

// Unwrap returns the cause (an I/O error), or nil.
func (e *FileError) Unwrap() error { return e.err }

// ValidationError is returned when a document breaks one or more rules. It
// lists every problem found, in document order.
type ValidationError struct {
	File     string
	Type     DocumentType
	Problems []Problem
}

// Error names the document and lists its problems, one per line when
// there are several.
func (e *ValidationError) Error() string {
	name := e.File
	if name == "" {
		name = "document"
	}
	if len(e.Problems) == 1 {
		return fmt.Sprintf("invalid %s %s: %s", e.Type.noun(), name, e.Problems[0].String())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "invalid %s %s: %d problems:", e.Type.noun(), name, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// SubjectError is a leaf certificate subject notation cannot read as a
// distinguished name; its message is notation's.
type SubjectError struct {
	Subject string
	Err     *DNError
}

// Error returns notation's message.
func (e *SubjectError) Error() string {
	return fmt.Sprintf("error while parsing the certificate subject from the digital signature. error : %q", e.Err)
}

// Unwrap returns the [*DNError].
func (e *SubjectError) Unwrap() error { return e.Err }

// DNError is a distinguished name notation does not accept (see
// [ParseDN]); its message is notation's.
type DNError = dn.Error

// DNErrorKind says what is wrong with a distinguished name.
type DNErrorKind = dn.ErrorKind

// The ways a distinguished name is refused ([DNError].Kind).
const (
	// DNUnsupportedHex is a '#'-encoded (BER) value, "=#".
	DNUnsupportedHex = dn.KindUnsupportedHex
	// DNSyntax is text that is not an RFC 4514 DN.
	DNSyntax = dn.KindSyntax
	// DNMultiValued is an RDN with several attributes joined by '+'.
	DNMultiValued = dn.KindMultiValued
	// DNDuplicate is an attribute type given twice.
	DNDuplicate = dn.KindDuplicate
	// DNMissingMandatory lacks C, ST or O.
	DNMissingMandatory = dn.KindMissingMandatory
)
