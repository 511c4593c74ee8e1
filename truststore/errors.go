package truststore

// ErrorKind classifies an [*Error].
type ErrorKind string

// The ways loading a store fails.
const (
	KindBadReference ErrorKind = "bad-reference"    // type or name invalid
	KindNotFound     ErrorKind = "not-found"        // no such folder
	KindNotDirectory ErrorKind = "not-directory"    // a file or a symlink
	KindUnreadable   ErrorKind = "unreadable"       // permission or I/O error
	KindNotRegular   ErrorKind = "not-regular-file" // sub-folder, symlink, device or pipe inside
	KindBadCertFile  ErrorKind = "bad-certificate-file"
	KindNotCA        ErrorKind = "not-ca" // neither a CA nor self-signed
	KindTSANotRoot   ErrorKind = "tsa-not-root"
	KindEmpty        ErrorKind = "empty"
	KindFileTooLarge ErrorKind = "file-too-large"
)

// Error is why a named store cannot be used. Its message is notation-go
// v1.3.2's (verifier/truststore/truststore.go), followed by the cause where
// notation hides it.
type Error struct {
	Ref  Ref
	Kind ErrorKind
	// Path is the store's folder; File is the offending file in it, if any.
	Path string
	File string
	msg  string
	err  error
}

// Error returns notation's message and the cause.
func (e *Error) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

// NotationMessage returns notation's message alone, without the cause.
func (e *Error) NotationMessage() string { return e.msg }

// Unwrap returns the cause (an I/O error, a certificate parsing error, a
// *bounded.TooLargeError of package internal/bounded), or nil.
func (e *Error) Unwrap() error { return e.err }
