package verify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
	"github.com/notaryproject/notation-core-go/signature"
	nx509 "github.com/notaryproject/notation-core-go/x509"
	"github.com/notaryproject/tspclient-go"

	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/truststore"
)

// authenticTimestamp is spec "Signature Verification" step "Validate
// Authentic Timestamp".
//
// notary.x509.signingAuthority: every certificate of the chain was valid
// at the authentic signing time (spec "Signing Scheme").
//
// notary.x509: the RFC 3161 timestamp is verified when the statement has a
// tsa trust store and verifyTimestamp is "always" (the default), or
// "afterCertExpiry" and some certificate of the chain has expired (spec
// "verifyTimestamp"). Then the token must be present, intact, over the
// signature, issued by a TSA that chains to the tsa stores at its genTime,
// with a well-formed timestamping chain that is not revoked, and the
// signing chain must have been valid throughout the timestamp's accuracy
// range (tspclient-go; notation-go verifier.verifyTimestamp). Otherwise
// every certificate of the chain must be valid now.
func (e *evaluation) authenticTimestamp() bool {
	si := &e.content.SignerInfo
	chain := si.CertificateChain
	if si.SignedAttributes.SigningScheme != signature.SigningSchemeX509 {
		at := si.SignedAttributes.SigningTime
		for _, c := range chain {
			if at.Before(c.NotBefore) || at.After(c.NotAfter) {
				return !e.fail(CheckAuthenticTimestamp, fmt.Errorf("certificate %q was not valid when the digital signature was produced at %q", c.Subject.String(), at.Format(time.RFC1123Z)), false)
			}
		}
		e.pass(CheckAuthenticTimestamp, fmt.Sprintf("every certificate of the chain was valid at the authentic signing time %q", at.Format(time.RFC1123Z)))
		return true
	}

	verifyTimestamp, why := true, ""
	if !hasStoreType(e.st, truststore.TypeTSA) {
		verifyTimestamp, why = false, "no tsa trust store is configured in the trust policy"
	} else if e.st.VerifyTimestamp() == policy.TimestampAfterCertExpiry && !anyExpired(chain, e.now) {
		verifyTimestamp, why = false, `verifyTimestamp is "afterCertExpiry" and the signing chain has not expired`
	}
	if !verifyTimestamp {
		for _, c := range chain {
			if e.now.Before(c.NotBefore) {
				return !e.fail(CheckAuthenticTimestamp, fmt.Errorf("verification time is before certificate %q validity period, it will be valid from %q", c.Subject.String(), c.NotBefore.Format(time.RFC1123Z)), false)
			}
			if e.now.After(c.NotAfter) {
				return !e.fail(CheckAuthenticTimestamp, fmt.Errorf("verification time is after certificate %q validity period, it was expired at %q", c.Subject.String(), c.NotAfter.Format(time.RFC1123Z)), false)
			}
		}
		e.pass(CheckAuthenticTimestamp, "every certificate of the chain is valid now (timestamp not verified: "+why+")")
		return true
	}

	ts, err := e.verifyTimestampToken(si)
	if err != nil {
		return !e.fail(CheckAuthenticTimestamp, err, false)
	}
	e.res.Signer.Timestamp = ts
	e.pass(CheckAuthenticTimestamp, fmt.Sprintf("timestamped by %q at %s (±%s), when every certificate of the chain was valid",
		ts.Authority, ts.Time.Format(time.RFC3339), ts.Accuracy))
	return true
}

func anyExpired(chain []*x509.Certificate, now time.Time) bool {
	for _, c := range chain {
		if now.After(c.NotAfter) {
			return true
		}
	}
	return false
}

// tokenEntry is a verified timestamp token (or why it does not verify).
type tokenEntry struct {
	ts       *tspclient.Timestamp
	tsaChain []*x509.Certificate
	err      error
}

// verifyTimestampToken verifies the timestamp countersignature of si with
// notation-go's steps and messages.
func (e *evaluation) verifyTimestampToken(si *signature.SignerInfo) (*Timestamp, error) {
	token := si.UnsignedAttributes.TimestampSignature
	if len(token) == 0 {
		return nil, errors.New("no timestamp countersignature was found in the signature envelope")
	}
	tv := e.v.timestampToken(e, token, si.Signature)
	if tv.err != nil {
		return nil, tv.err
	}
	// The signing chain was valid over the whole accuracy range of the
	// timestamp (RFC 3161 2.4.2); it need not be valid now.
	for _, c := range si.CertificateChain {
		if !tv.ts.BoundedAfter(c.NotBefore) {
			return nil, fmt.Errorf("timestamp can be before certificate %q validity period, it will be valid from %q", c.Subject.String(), c.NotBefore.Format(time.RFC1123Z))
		}
		if !tv.ts.BoundedBefore(c.NotAfter) {
			return nil, fmt.Errorf("timestamp can be after certificate %q validity period, it was expired at %q", c.Subject.String(), c.NotAfter.Format(time.RFC1123Z))
		}
	}
	// The timestamping chain's revocation is always enforced here (spec
	// "Validate Authentic Timestamp"; notation-go purpose.Timestamping).
	results, err := e.v.chainRevocation(e.ctx, purpose.Timestamping, tv.tsaChain, time.Time{})
	if err != nil {
		return nil, withPrefix("failed to check timestamping certificate chain revocation with error: ", err)
	}
	switch verdict, subject, detail := revocationVerdict(results, tv.tsaChain); verdict {
	case result.ResultRevoked:
		return nil, &notationError{msg: fmt.Sprintf("timestamping certificate with subject %q is revoked", subject), cause: detail}
	case result.ResultUnknown:
		return nil, &notationError{msg: fmt.Sprintf("timestamping certificate with subject %q revocation status is unknown", subject), cause: detail}
	}
	return &Timestamp{Time: tv.ts.Value, Accuracy: tv.ts.Accuracy, Authority: tv.tsaChain[0].Subject.String()}, nil
}

// timestampToken verifies a token over sig against the statement's tsa
// stores, once per token, signature and set of stores in the life of the
// Verifier: parse, check the TSTInfo and its message imprint, build the
// TSA's chain to a tsa store root at genTime, check the timestamping
// certificate requirements.
func (v *Verifier) timestampToken(e *evaluation, token, sig []byte) tokenEntry {
	var refs []string
	for _, r := range e.st.TrustStores() {
		if r.Type == truststore.TypeTSA {
			refs = append(refs, r.String())
		}
	}
	th, sh := sha256.Sum256(token), sha256.Sum256(sig)
	key := hex.EncodeToString(th[:]) + hex.EncodeToString(sh[:]) + strings.Join(refs, "\x00")
	return v.tokens.get(e.ctx, key, func() (tokenEntry, bool) {
		ts, chain, err := v.checkToken(e, token, sig)
		return tokenEntry{ts, chain, err}, !contextErr(e.ctx)
	})
}

func (v *Verifier) checkToken(e *evaluation, token, sig []byte) (*tspclient.Timestamp, []*x509.Certificate, error) {
	signed, err := tspclient.ParseSignedToken(token)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to parse timestamp countersignature with error: %w", err)
	}
	info, err := signed.Info()
	if err != nil {
		return nil, nil, fmt.Errorf("failed to get the timestamp TSTInfo with error: %w", err)
	}
	ts, err := info.Validate(sig)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to get timestamp from timestamp countersignature with error: %w", err)
	}
	roots, err := v.storeCertificates(e.ctx, e.st, truststore.TypeTSA)
	if err != nil {
		return nil, nil, withPrefix("failed to load tsa trust store with error: ", err)
	}
	if len(roots) == 0 {
		return nil, nil, errors.New("no trusted TSA certificate found in trust store")
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	chain, err := signed.Verify(e.ctx, x509.VerifyOptions{CurrentTime: ts.Value, Roots: pool})
	if err != nil {
		return nil, nil, fmt.Errorf("failed to verify the timestamp countersignature with error: %w", err)
	}
	if err := nx509.ValidateTimestampingCertChain(chain); err != nil {
		return nil, nil, fmt.Errorf("failed to validate the timestamping certificate chain with error: %w", err)
	}
	return ts, chain, nil
}
