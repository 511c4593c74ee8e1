package crlbundle

import "fmt"

// ErrorKind says what is wrong with a CRL bundle.
type ErrorKind string

// The kinds of [*Error].
const (
	// KindRead: the file cannot be read (missing, not a regular file,
	// larger than [MaxSize]).
	KindRead ErrorKind = "read"
	// KindParse: a PEM "X509 CRL" block is not a CRL.
	KindParse ErrorKind = "parse"
	// KindEmpty: the file holds no PEM "X509 CRL" block and is not one DER
	// CRL.
	KindEmpty ErrorKind = "empty"
)

// Error is a CRL bundle that cannot be used. Its message names the file;
// Detail is the same without the file, for callers that name it
// themselves.
type Error struct {
	Path string
	Kind ErrorKind
	Err  error
}

// Error returns "CRL bundle PATH: DETAIL".
func (e *Error) Error() string { return fmt.Sprintf("CRL bundle %s: %s", e.Path, e.Detail()) }

// Detail says what is wrong, without the file's name.
func (e *Error) Detail() string {
	switch e.Kind {
	case KindEmpty:
		return fmt.Sprintf("holds no CRL (PEM \"X509 CRL\" blocks or one DER CRL): %v", e.Err)
	case KindParse:
		return fmt.Sprintf("a CRL does not parse: %v", e.Err)
	}
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// NotInBundleError is the revocation error of a certificate that names
// OCSP responders or CRL distribution points when no CRL of the bundle is
// its issuer's: with an offline bundle nothing is asked over the network,
// so its status is unknown, as when its responders cannot be reached.
type NotInBundleError struct {
	// Issuer is the certificate's issuer (RFC 2253 form).
	Issuer string
}

// Error says that no CRL was found.
func (e *NotInBundleError) Error() string {
	return fmt.Sprintf("no CRL in the offline CRL bundle is signed by the issuer %q, and no network request is made with an offline bundle", e.Issuer)
}
