package plugin

import (
	"context"
	"errors"
	"fmt"

	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/keys"
)

// Protocol error codes (plugin-extensibility.md "Error codes"). notation may
// retry after TIMEOUT and THROTTLED.
const (
	CodeValidation                 = string(pfw.ErrorCodeValidation)
	CodeUnsupportedContractVersion = string(pfw.ErrorCodeUnsupportedContractVersion)
	CodeAccessDenied               = string(pfw.ErrorCodeAccessDenied)
	CodeTimeout                    = string(pfw.ErrorCodeTimeout)
	CodeThrottled                  = string(pfw.ErrorCodeThrottled)
	CodeGeneric                    = string(pfw.ErrorCodeGeneric)
)

// Error is the protocol's error response, written as JSON on standard error.
type Error struct {
	Code    string `json:"errorCode"`
	Message string `json:"errorMessage"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

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
	code string
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

func validationErrorf(format string, args ...any) error {
	return &codedError{code: CodeValidation, err: fmt.Errorf(format, args...)}
}

// toError maps an error to the protocol: an explicit code wins, then the key
// backend's classification, then context cancellation; anything else is the
// generic ERROR.
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
