//go:build cgo

package pkcs11key

import (
	"fmt"

	"github.com/miekg/pkcs11"

	"github.com/keyward/keyward/keys"
)

// The error types of the PKCS#11 calls, which exist only with cgo; the
// package's other errors are in errors.go.

// notFound is a missing token or key (KindInvalid).
type notFound struct{ msg string }

// Error returns the message.
func (e *notFound) Error() string { return e.msg }

func notFoundf(format string, args ...any) error {
	return keys.WithKind(keys.KindInvalid, &notFound{msg: fmt.Sprintf(format, args...)})
}

// p11Error is a failed PKCS#11 call: a message naming the operation and
// the CKR_ code, wrapping the pkcs11.Error.
type p11Error struct {
	msg  string
	code pkcs11.Error
}

// Error returns the message.
func (e *p11Error) Error() string { return e.msg }

// Unwrap returns the pkcs11.Error, for [isCode].
func (e *p11Error) Unwrap() error { return e.code }
