package plugin

import (
	"context"
	"errors"
	"fmt"

	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/keys"
)

// ErrorCode is a protocol error code (specification
// plugin-extensibility.md "Error codes"), the errorCode of an [Error].
type ErrorCode string

// Protocol error codes, notation-plugin-framework-go's. notation may retry
// after TIMEOUT and THROTTLED.
const (
	CodeValidation                 = ErrorCode(pfw.ErrorCodeValidation)
	CodeUnsupportedContractVersion = ErrorCode(pfw.ErrorCodeUnsupportedContractVersion)
	CodeAccessDenied               = ErrorCode(pfw.ErrorCodeAccessDenied)
	CodeTimeout                    = ErrorCode(pfw.ErrorCodeTimeout)
	CodeThrottled                  = ErrorCode(pfw.ErrorCodeThrottled)
	CodeGeneric                    = ErrorCode(pfw.ErrorCodeGeneric)
)

// Error is the protocol's error response, written as JSON on standard error.
type Error struct {
	Code    ErrorCode `json:"errorCode"`
	Message string    `json:"errorMessage"`
}

// Error returns the code and the message.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// JSON returns the error response bytes.
func (e *Error) JSON() []byte {
	b, err := marshal(e)
	if err != nil { // cannot happen: two strings
		return []byte(`{"errorCode":"ERROR","errorMessage":"internal error"}`)
	}
	return b
}

// codedError is an error that already carries its protocol code.
type codedError struct {
	code ErrorCode
	err  error
}

// Error returns the wrapped error's message.
func (e *codedError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *codedError) Unwrap() error { return e.err }

func validationErrorf(format string, args ...any) error {
	return &codedError{code: CodeValidation, err: fmt.Errorf(format, args...)}
}

// toError maps an error to the protocol: an explicit code wins, then the key
// backend's classification ([keys.ErrorKind]), then context cancellation;
// anything else is the generic ERROR.
func toError(err error) *Error {
	var ce *codedError
	if errors.As(err, &ce) {
		return &Error{Code: ce.code, Message: err.Error()}
	}
	code := CodeGeneric
	switch keys.KindOf(err) {
	case keys.KindInvalid:
		code = CodeValidation
	case keys.KindAccessDenied:
		code = CodeAccessDenied
	case keys.KindTimeout:
		code = CodeTimeout
	case keys.KindBusy:
		code = CodeThrottled
	default:
		if errors.Is(err, context.DeadlineExceeded) {
			code = CodeTimeout
		}
	}
	return &Error{Code: code, Message: err.Error()}
}

// Internal returns the ERROR response for an unexpected failure such as a
// recovered panic.
func Internal(format string, args ...any) *Error {
	return &Error{Code: CodeGeneric, Message: fmt.Sprintf(format, args...)}
}
