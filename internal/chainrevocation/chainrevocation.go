// Package chainrevocation combines notation-core-go's per-certificate
// revocation results of a certificate chain into one verdict, as notation-go
// v1.3.2 does (verifier/verifier.go revocationFinalResult). keyward's
// evaluator and its plugin's verify-signature both judge chains with it and
// word the verdict each for its own caller.
package chainrevocation

import (
	"crypto/x509"
	"fmt"

	"github.com/notaryproject/notation-core-go/revocation/result"
)

// Verdict is a chain's revocation status.
type Verdict struct {
	// Result is result.ResultOK (every certificate good or
	// non-revocable), result.ResultRevoked (some certificate revoked) or
	// result.ResultUnknown (none revoked, some undetermined).
	Result result.Result
	// Subject names the certificate the result is about: the revoked, or
	// else undetermined, certificate nearest the leaf; "" when OK.
	Subject string
	// Notes are the errors the OCSP responders and CRL distribution points
	// reported, from the root end of the chain to the leaf.
	Notes []Note
}

// Note is what one responder or distribution point said of a certificate.
type Note struct {
	// Index is the certificate's position in the chain (0 is the leaf).
	Index int
	// Subject is the certificate's subject.
	Subject string
	// Method is how it was asked (OCSP, CRL, or OCSP falling back to CRL).
	Method result.RevocationMethod
	// Server is the responder or distribution point.
	Server string
	// Err is what went wrong.
	Err error
}

// Combine judges a chain from its results, one per certificate in chain
// order. Results that do not match the chain one for one are an error; the
// chain is then not judged.
func Combine(results []*result.CertRevocationResult, chain []*x509.Certificate) (Verdict, error) {
	if len(results) != len(chain) || len(chain) == 0 {
		return Verdict{Result: result.ResultUnknown}, fmt.Errorf("%d revocation results for %d certificates", len(results), len(chain))
	}
	var v Verdict
	var revoked, unknown string
	for i := len(chain) - 1; i >= 0; i-- {
		r := results[i]
		subject := chain[i].Subject.String()
		if r == nil {
			unknown = subject
			continue
		}
		for _, s := range r.ServerResults {
			if s != nil && s.Error != nil {
				v.Notes = append(v.Notes, Note{Index: i, Subject: subject, Method: s.RevocationMethod, Server: s.Server, Err: s.Error})
			}
		}
		switch r.Result {
		case result.ResultOK, result.ResultNonRevokable:
		case result.ResultRevoked:
			revoked = subject
		default:
			unknown = subject
		}
	}
	switch {
	case revoked != "":
		v.Result, v.Subject = result.ResultRevoked, revoked
	case unknown != "":
		v.Result, v.Subject = result.ResultUnknown, unknown
	default:
		v.Result, v.Notes = result.ResultOK, nil
	}
	return v, nil
}
