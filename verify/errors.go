package verify

import pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

// The error types of package verify, but for [ArtifactError] and its
// [ArtifactErrorKind], which are beside VerifyArtifact in artifact.go.

// CheckError is the error of an enforced failure: Error returns the
// message notation gives.
type CheckError struct {
	Check        CheckName
	Msg          string
	Inconclusive bool
}

// Error returns notation's message for the failure.
func (e *CheckError) Error() string { return e.Msg }

// notationError carries notation's message for a failure and, for
// CheckResult.Detail, the cause notation does not print.
type notationError struct {
	msg   string
	cause error
}

// Error returns notation's message.
func (e *notationError) Error() string { return e.msg }

// Unwrap returns the cause.
func (e *notationError) Unwrap() error { return e.cause }

// pluginError is an error a plugin reported; Error is its message.
type pluginError struct {
	code pfw.ErrorCode
	msg  string
}

// Error returns the plugin's message.
func (e *pluginError) Error() string { return e.msg }
