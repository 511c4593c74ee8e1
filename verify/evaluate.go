package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // registers application/cose
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // registers application/jose+json
	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/truststore"
)

// PayloadTypeV1 is the only payload content type (spec "Payload").
const PayloadTypeV1 = "application/vnd.cncf.notary.payload.v1+json"

// evaluation is the state of one signature's evaluation.
type evaluation struct {
	v   *Verifier
	ctx context.Context
	req Request
	st  Statement
	env Envelope
	res *Result
	// now is the verification time, one instant for every check.
	now time.Time

	content    *signature.EnvelopeContent
	payload    *payloadDocument
	payloadErr error

	plugin     verificationPlugin
	inProcess  bool // plugin is keyward itself, in process
	pluginName string
	caps       []pfw.Capability

	current CheckName // the check running, for a panic's report
}

// payloadDocument is the signed payload (spec "Payload").
type payloadDocument struct {
	TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
}

// Verify evaluates one signature envelope under req.Statement, running the
// checks in notation-go v1.3.2's order until an enforced check fails (see
// the package documentation). It never panics on any envelope and fails
// closed: a Result passes only if every enforced check passed.
func (v *Verifier) Verify(ctx context.Context, req Request, env Envelope) *Result {
	res := &Result{MediaType: env.MediaType}
	if env.Manifest.Digest != "" {
		res.Signature = env.Manifest.Digest.String()
	}
	st := req.Statement
	if st == nil {
		res.Err = errors.New("verify: Request.Statement is nil")
		return res
	}
	res.Statement, res.Level = st.Name(), st.Level()
	res.Checks = make([]CheckResult, 0, len(Checks()))
	for _, c := range Checks() {
		res.Checks = append(res.Checks, CheckResult{Check: c, Action: actionOf(st, c), Outcome: OutcomeNotRun})
	}
	// Spec "Signature Verification" step 2: a skip level accepts the
	// artifact without reading its signatures (notation-go
	// verifier.Verify returns a successful outcome).
	if st.Level() == policy.LevelSkip {
		for i := range res.Checks {
			res.Checks[i].Action = policy.ActionSkip
			res.Checks[i].Outcome = OutcomeSkipped
			res.Checks[i].Message = fmt.Sprintf("trust policy statement %q has level skip: signatures are not verified", st.Name())
		}
		res.Passed = true
		return res
	}
	e := &evaluation{v: v, ctx: ctx, req: req, st: st, env: env, res: res, now: time.Now()}
	e.run()
	res.Passed = res.Err == nil
	return res
}

// actionOf is the action of a check under st: its trust-policy check's
// action, or enforce for the checks notation always enforces.
func actionOf(st Statement, c CheckName) policy.Action {
	if pc := c.PolicyCheck(); pc != "" {
		return st.Action(pc)
	}
	return policy.ActionEnforce
}

// run runs the checks in order. A panic (a bug, or a library choking on a
// hostile envelope) fails the check that was running, whatever its action.
func (e *evaluation) run() {
	defer func() {
		if p := recover(); p != nil {
			c := e.res.Check(e.current)
			c.Outcome = OutcomeFailed
			c.Message = fmt.Sprintf("internal error while checking %s: %v", e.current, p)
			c.Detail = string(debug.Stack())
			e.res.FailedCheck = e.current
			e.res.Err = &CheckError{Check: e.current, Msg: c.Message, Inconclusive: true}
		}
	}()
	steps := []struct {
		check CheckName
		run   func() bool
	}{
		{CheckIntegrity, e.integrity},
		{CheckPluginDiscovery, e.pluginDiscovery},
		{CheckAuthenticity, e.authenticity},
		{CheckTrustedIdentity, e.trustedIdentity},
		{CheckExpiry, e.expiry},
		{CheckAuthenticTimestamp, e.authenticTimestamp},
		{CheckRevocation, e.revocation},
		{CheckPluginVerification, e.pluginVerification},
		{CheckTargetArtifact, e.payloadChecks},
	}
	for _, s := range steps {
		e.current = s.check
		if !s.run() {
			return
		}
	}
}

// fail records a failure of c. It returns true when c is enforced: the
// evaluation then ends and the failure is the signature's error.
func (e *evaluation) fail(c CheckName, err error, inconclusive bool) (stop bool) {
	cr := e.res.Check(c)
	cr.Outcome = OutcomeFailed
	cr.Message, cr.Detail = messageOf(err)
	cr.Inconclusive = inconclusive
	if cr.Action != policy.ActionEnforce {
		return false
	}
	e.res.FailedCheck = c
	e.res.Err = &CheckError{Check: c, Msg: cr.Message, Inconclusive: inconclusive}
	return true
}

func (e *evaluation) pass(c CheckName, msg string) {
	cr := e.res.Check(c)
	cr.Outcome, cr.Message = OutcomePassed, msg
}

func (e *evaluation) skip(c CheckName, msg string) {
	cr := e.res.Check(c)
	cr.Outcome, cr.Message = OutcomeSkipped, msg
}

// messageOf returns notation's message for err and, when that hides the
// cause, the whole error as detail.
func messageOf(err error) (msg, detail string) {
	switch e := err.(type) {
	case interface{ NotationMessage() string }: // *truststore.Error
		if m := e.NotationMessage(); m != err.Error() {
			return m, err.Error()
		}
	case *notationError:
		if e.cause != nil {
			return e.msg, fullText(e.cause)
		}
	}
	return err.Error(), ""
}

// fullText renders err with the causes notation's messages leave out.
func fullText(err error) string {
	if e, ok := err.(*notationError); ok && e.cause != nil {
		return e.msg + ": " + fullText(e.cause)
	}
	return err.Error()
}

// withPrefix returns notation's message prefix+cause, keeping err whole as
// the detail.
func withPrefix(prefix string, err error) error {
	m, _ := messageOf(err)
	return &notationError{msg: prefix + m, cause: err}
}

// integrity is spec "Signature Verification" step 4 ("Validate
// Integrity"): the envelope parses by its media type, its signature
// verifies with the leaf key, the algorithm is the one the leaf's key
// dictates, the signed attributes follow the envelope rules (crit,
// signing time, expiry after signing time) and the chain meets the
// certificate requirements, with no time check (notation-core-go
// Envelope.Verify). The payload must be the v1 type. Always enforced.
func (e *evaluation) integrity() bool {
	if n := len(e.env.Bytes); n > MaxEnvelopeSize {
		return !e.fail(CheckIntegrity, fmt.Errorf("unable to parse the digital signature, error : envelope of %d bytes is larger than the %d allowed", n, MaxEnvelopeSize), false)
	}
	ie := e.v.envelopeIntegrity(e.ctx, e.env)
	if ie.err != nil {
		return !e.fail(CheckIntegrity, ie.err, ie.inconclusive)
	}
	content := ie.content
	if content.Payload.ContentType != PayloadTypeV1 { // spec "Payload": content type
		return !e.fail(CheckIntegrity, fmt.Errorf("payload content type %q not supported", content.Payload.ContentType), false)
	}
	e.content = content
	e.payload = &payloadDocument{}
	if err := json.Unmarshal(content.Payload.Content, e.payload); err != nil {
		e.payload, e.payloadErr = nil, err
	}
	e.res.Signer = describeSigner(content, e.env.MediaType, e.payload, e.v.certs)
	e.pass(CheckIntegrity, fmt.Sprintf("the %s signature verifies with the key of %q and its certificate chain is well formed",
		e.res.Signer.SignatureAlgorithm, e.res.Signer.Subject))
	return true
}

// authenticity is the first half of spec step "Validate Authenticity": some
// certificate of the envelope's chain is byte-for-byte one of the
// certificates in the statement's stores of the type the signing scheme
// uses (spec "Signing Scheme": notary.x509 → ca, notary.x509.signingAuthority
// → signingAuthority). notation-core-go VerifyAuthenticity; no path is
// built to the store.
func (e *evaluation) authenticity() bool {
	si := &e.content.SignerInfo
	var typ truststore.Type
	switch scheme := si.SignedAttributes.SigningScheme; scheme {
	case signature.SigningSchemeX509:
		typ = truststore.TypeCA
	case signature.SigningSchemeX509SigningAuthority:
		typ = truststore.TypeSigningAuthority
	default:
		return !e.fail(CheckAuthenticity, fmt.Errorf("error while loading the trust store, unrecognized signing scheme %q", scheme), false)
	}
	certs, err := e.v.storeCertificates(e.ctx, e.st, typ)
	if err != nil {
		return !e.fail(CheckAuthenticity, err, false)
	}
	if len(certs) == 0 {
		return !e.fail(CheckAuthenticity, errors.New("no trusted certificates are found to verify authenticity"), true)
	}
	trusted, err := signature.VerifyAuthenticity(si, certs)
	if err != nil {
		var ae *signature.SignatureAuthenticityError
		if errors.As(err, &ae) {
			return !e.fail(CheckAuthenticity, err, false)
		}
		return !e.fail(CheckAuthenticity, fmt.Errorf("authenticity verification failed with error : %s", err), true)
	}
	e.pass(CheckAuthenticity, fmt.Sprintf("certificate %q of the chain is in the statement's %s trust stores", e.v.certs.subject(trusted), typ))
	return true
}

// trustedIdentity is the second half of "Validate Authenticity": the leaf
// certificate's subject contains every attribute of some x509.subject
// trusted identity, or the identities are "*" (spec "Trusted Identities";
// the statement applies notation's DN rules). A verification plugin with
// SIGNATURE_VERIFIER.TRUSTED_IDENTITY does this instead (spec "Verification
// plugin"), at the pluginVerification step.
func (e *evaluation) trustedIdentity() bool {
	if e.hasCap(pfw.CapabilityTrustedIdentityVerifier) {
		e.res.Check(CheckTrustedIdentity).Message = fmt.Sprintf("left to verification plugin %q", e.pluginName)
		return true
	}
	leaf := e.content.SignerInfo.CertificateChain[0]
	if err := e.st.VerifyIdentity(leaf); err != nil {
		return !e.fail(CheckTrustedIdentity, err, false)
	}
	e.pass(CheckTrustedIdentity, fmt.Sprintf("signing certificate %q is a trusted identity of statement %q", e.v.certs.subject(leaf), e.st.Name()))
	return true
}

// expiry is spec step "Validate Expiry": "expired when the current time is
// greater than or equal to expiry time".
func (e *evaluation) expiry() bool {
	exp := e.content.SignerInfo.SignedAttributes.Expiry
	if exp.IsZero() {
		e.pass(CheckExpiry, "the signature has no expiry")
		return true
	}
	if !e.now.Before(exp) {
		return !e.fail(CheckExpiry, fmt.Errorf("digital signature has expired on %q", exp.Format(time.RFC1123Z)), false)
	}
	e.pass(CheckExpiry, fmt.Sprintf("the signature expires on %q", exp.Format(time.RFC1123Z)))
	return true
}

// payloadChecks are notation-go verifier.Verify's checks after the
// signature's own: the payload's targetArtifact is the artifact (digest,
// size and media type, oras content.Equal; spec "Signature Verification"
// step 1 identifies the artifact by digest), then the user metadata asked
// for is among its annotations. Both run, both are always enforced, and
// when both fail the error is the user metadata's, as in notation.
func (e *evaluation) payloadChecks() bool {
	if e.payloadErr != nil {
		e.fail(CheckTargetArtifact, e.payloadErr, false)
		return false
	}
	got, want := e.payload.TargetArtifact, e.req.Artifact
	if got.Digest == want.Digest && got.Size == want.Size && got.MediaType == want.MediaType {
		e.pass(CheckTargetArtifact, fmt.Sprintf("the signature is for %s", got.Digest))
	} else {
		e.fail(CheckTargetArtifact, &notationError{
			msg:   "content descriptor mismatch",
			cause: fmt.Errorf("the signature is for %s (%d bytes, %s), not %s (%d bytes, %s)", got.Digest, got.Size, got.MediaType, want.Digest, want.Size, want.MediaType),
		}, false)
	}
	e.current = CheckUserMetadata
	if len(e.req.UserMetadata) == 0 {
		e.skip(CheckUserMetadata, "no user metadata was asked for")
		return true
	}
	for _, k := range sortedKeys(e.req.UserMetadata) {
		if v, ok := got.Annotations[k]; !ok || v != e.req.UserMetadata[k] {
			e.fail(CheckUserMetadata, &notationError{
				msg:   "unable to find specified metadata in the signature",
				cause: fmt.Errorf("the signature's metadata has no %s=%s", k, e.req.UserMetadata[k]),
			}, false)
			return true
		}
	}
	e.pass(CheckUserMetadata, "the signature carries the user metadata asked for")
	return true
}
