package keys

import (
	"errors"
	"fmt"
)

// ErrorKind classifies an error for the plugin protocol's error codes
// (specification plugin-extensibility.md "Error codes"; package plugin maps
// each kind to its code).
type ErrorKind string

// Error kinds. An [*Error] whose Kind is empty is an internal error.
const (
	// KindInternal is an unexpected failure (protocol code ERROR).
	KindInternal ErrorKind = "internal"
	// KindInvalid is a problem with the request, the key id, the plugin
	// config or the key material that the user must fix (VALIDATION_ERROR).
	KindInvalid ErrorKind = "invalid"
	// KindAccessDenied is a refused secret: wrong PIN or passphrase, a
	// locked token (ACCESS_DENIED).
	KindAccessDenied ErrorKind = "access-denied"
	// KindTimeout is a device or service that did not answer in time;
	// notation may retry (TIMEOUT).
	KindTimeout ErrorKind = "timeout"
	// KindBusy is a device or service that refused for load; notation may
	// retry (THROTTLED).
	KindBusy ErrorKind = "busy"
)

// Error is an error of a known [ErrorKind]. Its message is the wrapped
// error's.
type Error struct {
	Kind ErrorKind
	Err  error
}

// Error returns the wrapped error's message.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of the first [*Error] in err's chain, or
// KindInternal when there is none (or its Kind is empty).
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) && e.Kind != "" {
		return e.Kind
	}
	return KindInternal
}

// Invalidf returns a KindInvalid error.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: KindInvalid, Err: fmt.Errorf(format, args...)}
}

// Deniedf returns a KindAccessDenied error.
func Deniedf(format string, args ...any) error {
	return &Error{Kind: KindAccessDenied, Err: fmt.Errorf(format, args...)}
}

// WithKind returns err classified as kind, keeping its message and chain.
func WithKind(kind ErrorKind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Err: err}
}
