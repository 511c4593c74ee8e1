package verify

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
	"github.com/notaryproject/notation-core-go/signature"
	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"

	"github.com/keyward/keyward/internal/chainrevocation"
	"github.com/keyward/keyward/internal/crlbundle"
	"github.com/keyward/keyward/policy"
)

// revocation is spec "Signature Verification" step "Validate revocation
// status" for the signing chain, with notation-core-go's revocation
// package (spec "Certificate Revocation Evaluation"): every certificate but
// the root is checked, by OCSP when it names responders, falling back to
// its CRLs when OCSP cannot tell, by CRL when it names only CRLs; a
// certificate with neither counts as good. Skipped when the action is skip
// or the verification plugin has SIGNATURE_VERIFIER.REVOCATION_CHECK.
func (e *evaluation) revocation() bool {
	if e.res.Check(CheckRevocation).Action == policy.ActionSkip {
		e.skip(CheckRevocation, "revocation is set to skip in the trust policy")
		return true
	}
	if e.hasCap(pfw.CapabilityRevocationCheckVerifier) {
		e.res.Check(CheckRevocation).Message = fmt.Sprintf("left to verification plugin %q", e.pluginName)
		return true
	}
	si := &e.content.SignerInfo
	var authenticSigningTime time.Time
	if si.SignedAttributes.SigningScheme == signature.SigningSchemeX509SigningAuthority {
		// An invalidity date after the authentic signing time does not
		// revoke the signature (spec "Certificate Revocation Evaluation").
		authenticSigningTime = si.SignedAttributes.SigningTime
	}
	results, err := e.v.chainRevocation(e.ctx, purpose.CodeSigning, si.CertificateChain, authenticSigningTime)
	if err != nil {
		return !e.fail(CheckRevocation, &notationError{msg: fmt.Sprintf("unable to check revocation status, err: %s", err), cause: err}, false)
	}
	switch verdict, subject, detail := revocationVerdict(results, si.CertificateChain); verdict {
	case result.ResultRevoked:
		return !e.fail(CheckRevocation, &notationError{msg: fmt.Sprintf("signing certificate with subject %q is revoked", subject), cause: detail}, false)
	case result.ResultUnknown:
		return !e.fail(CheckRevocation, &notationError{msg: fmt.Sprintf("signing certificate with subject %q revocation status is unknown", subject), cause: detail}, false)
	}
	e.pass(CheckRevocation, "no certificate of the chain is revoked")
	return true
}

// revocationEntry is the revocation status of a chain.
type revocationEntry struct {
	results []*result.CertRevocationResult
	err     error
}

// chainRevocation checks a chain once per purpose and authentic signing
// time in the life of the Verifier, so every signature by the same
// certificates shares one round of OCSP and CRL requests (and core's chain
// validation that precedes it).
func (v *Verifier) chainRevocation(ctx context.Context, p purpose.Purpose, chain []*x509.Certificate, authenticSigningTime time.Time) ([]*result.CertRevocationResult, error) {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(p))
	h.Write(n[:])
	if !authenticSigningTime.IsZero() {
		binary.BigEndian.PutUint64(n[:], uint64(authenticSigningTime.UnixNano()))
		h.Write(n[:])
	}
	for _, c := range chain {
		binary.BigEndian.PutUint64(n[:], uint64(len(c.Raw)))
		h.Write(n[:])
		h.Write(c.Raw)
	}
	validator := v.codeSigning
	if p == purpose.Timestamping {
		validator = v.timestamping
	}
	e := v.revocations.get(ctx, hex.EncodeToString(h.Sum(nil)), func() (revocationEntry, bool) {
		if v.bundle != nil {
			results, err := v.offlineRevocation(ctx, p, chain, authenticSigningTime)
			return revocationEntry{results, err}, !contextErr(ctx)
		}
		if p == purpose.CodeSigning {
			if results, ok := v.revocationWithoutServers(chain); ok {
				return revocationEntry{results: results}, true
			}
		}
		results, err := validator.ValidateContext(ctx, revocation.ValidateContextOptions{
			CertChain:            chain,
			AuthenticSigningTime: authenticSigningTime,
		})
		return revocationEntry{results, err}, !contextErr(ctx)
	})
	return e.results, e.err
}

// revocationVerdict combines the results of a chain as notation-go does
// (internal/chainrevocation): good only if every certificate is; else
// revoked, naming the revoked certificate nearest the leaf; else unknown,
// naming the undetermined certificate nearest the leaf. detail lists what
// each responder said.
func revocationVerdict(results []*result.CertRevocationResult, chain []*x509.Certificate) (result.Result, string, error) {
	v, err := chainrevocation.Combine(results, chain)
	if err != nil {
		subject := ""
		if len(chain) > 0 {
			subject = chain[0].Subject.String()
		}
		return result.ResultUnknown, subject, err
	}
	var detail error
	if len(v.Notes) > 0 {
		notes := make([]string, len(v.Notes))
		for i, n := range v.Notes {
			notes[i] = fmt.Sprintf("certificate #%d %q: %s %s: %v", n.Index+1, n.Subject, n.Method, n.Server, n.Err)
		}
		detail = errors.New(strings.Join(notes, "; "))
	}
	return v.Result, v.Subject, detail
}

// offlineRevocation judges a chain from the Verifier's CRL bundle alone
// (Options.CRLBundle): notation-core-go's validator, with its chain
// validation and CRL rules, runs on the chain crlbundle prepares, with a
// fetcher that serves only bundled CRLs and an OCSP client that refuses
// every request; certificates that name servers the bundle cannot answer
// for are then marked unknown.
func (v *Verifier) offlineRevocation(ctx context.Context, p purpose.Purpose, chain []*x509.Certificate, authenticSigningTime time.Time) ([]*result.CertRevocationResult, error) {
	prep := v.bundle.Prepare(chain, time.Now(), true)
	val, err := revocation.NewWithOptions(revocation.Options{
		OCSPHTTPClient:   &http.Client{Transport: offlineTransport{}},
		CRLFetcher:       &crlbundle.Fetcher{CRLs: prep.CRLs},
		CertChainPurpose: p,
	})
	if err != nil {
		return nil, fmt.Errorf("offline revocation validator: %w", err)
	}
	results, err := val.ValidateContext(ctx, revocation.ValidateContextOptions{
		CertChain:            prep.Chain,
		AuthenticSigningTime: authenticSigningTime,
	})
	if err != nil {
		return nil, err
	}
	for _, i := range prep.Uncovered {
		if i < len(results) {
			results[i] = notInBundle(chain[i])
		}
	}
	return results, nil
}

// notInBundle is the result of a certificate the offline bundle has no CRL
// for although it names servers: unknown for each server, as
// notation-core-go reports a responder it cannot reach.
func notInBundle(c *x509.Certificate) *result.CertRevocationResult {
	err := &crlbundle.NotInBundleError{Issuer: c.Issuer.String()}
	r := &result.CertRevocationResult{Result: result.ResultUnknown}
	for _, u := range c.OCSPServer {
		r.ServerResults = append(r.ServerResults, &result.ServerResult{Result: result.ResultUnknown, Server: u, Error: err, RevocationMethod: result.RevocationMethodOCSP})
	}
	for _, u := range c.CRLDistributionPoints {
		r.ServerResults = append(r.ServerResults, &result.ServerResult{Result: result.ResultUnknown, Server: u, Error: err, RevocationMethod: result.RevocationMethodCRL})
	}
	switch {
	case len(c.OCSPServer) > 0 && len(c.CRLDistributionPoints) > 0:
		r.RevocationMethod = result.RevocationMethodOCSPFallbackCRL
	case len(c.OCSPServer) > 0:
		r.RevocationMethod = result.RevocationMethodOCSP
	default:
		r.RevocationMethod = result.RevocationMethodCRL
	}
	return r
}

// offlineTransport refuses every request: with an offline CRL bundle
// keyward verify asks nothing over the network.
type offlineTransport struct{}

func (offlineTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close() // a RoundTripper closes the body, even on error
	}
	return nil, fmt.Errorf("%s %s: no network request is made with an offline CRL bundle", r.Method, r.URL.Redacted())
}
