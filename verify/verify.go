package verify

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/notaryproject/notation-core-go/revocation"
	corecrl "github.com/notaryproject/notation-core-go/revocation/crl"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/crlbundle"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/truststore"
)

// Statement is the trust-policy statement signatures are evaluated under.
// [*policy.Statement] implements it; the evaluator reads nothing else of a
// policy.
type Statement interface {
	// Name is the statement's name, as notation's messages quote it.
	Name() string
	// Level is the statement's verification level before overrides.
	Level() policy.Level
	// Action is the effective action (enforce, log, skip) of a check,
	// overrides included.
	Action(c policy.Check) policy.Action
	// VerifyTimestamp is signatureVerification.verifyTimestamp ("" means
	// always).
	VerifyTimestamp() policy.TimestampOption
	// TrustStores are the statement's trust store references, in order.
	TrustStores() []truststore.Ref
	// TrustedIdentities are the statement's trusted identities; their
	// String form is sent to verification plugins as written.
	TrustedIdentities() []policy.Identity
	// VerifyIdentity decides, with notation's DN rules and messages,
	// whether the signing (leaf) certificate is a trusted identity.
	VerifyIdentity(leaf *x509.Certificate) error
}

// TrustStore gives the certificates of a named trust store.
// [*truststore.TrustStore] implements it, with notation's rules and messages.
type TrustStore interface {
	Certificates(ref truststore.Ref) ([]*x509.Certificate, error)
}

// The policy package is the statement and trust store keyward uses.
var (
	_ Statement  = (*policy.Statement)(nil)
	_ TrustStore = (*truststore.TrustStore)(nil)
)

// Defaults of notation v1.3.2 (cmd/notation/internal/revocation,
// notation-go plugin).
const (
	// DefaultOCSPTimeout bounds each OCSP request.
	DefaultOCSPTimeout = 2 * time.Second
	// DefaultCRLTimeout bounds each CRL download.
	DefaultCRLTimeout = 5 * time.Second
	// MaxEnvelopeSize bounds an envelope, as signature discovery does.
	MaxEnvelopeSize = 32 << 20
	// MaxPluginOutput bounds what a plugin may write to stdout or stderr.
	MaxPluginOutput = 64 << 20
	// DefaultCacheEntries bounds each in-memory cache of a Verifier.
	DefaultCacheEntries = 4096
)

// Options configures a Verifier.
type Options struct {
	// TrustStore gives the certificates of the stores statements name.
	// Required.
	TrustStore TrustStore
	// PluginDir is notation's plugin directory, {NOTATION_LIBEXEC}/plugins:
	// the plugin <name> is the executable <PluginDir>/<name>/notation-<name>.
	// Empty, signatures that need a verification plugin fail (inconclusive).
	PluginDir string
	// PluginTimeout bounds each plugin command; 0 leaves only the context's
	// deadline, as notation does.
	PluginTimeout time.Duration
	// OCSPTimeout and CRLTimeout bound each OCSP request and CRL download
	// (defaults DefaultOCSPTimeout and DefaultCRLTimeout).
	OCSPTimeout time.Duration
	CRLTimeout  time.Duration
	// CRLCache, if set, keeps downloaded CRLs across runs (see
	// [NewFileCache]). Within a Verifier CRLs are also kept in memory until
	// their NextUpdate. Cache errors never fail a verification.
	CRLCache corecrl.Cache
	// CRLBundle, if set, names an offline CRL bundle (PEM "X509 CRL"
	// blocks or one DER CRL, a regular file of at most 64 MiB) for
	// air-gapped verification, read once by NewVerifier: revocation of the
	// signing and timestamping chains is then judged from its CRLs alone,
	// with no OCSP request and no CRL download (see [Verifier]).
	CRLBundle string
	// CacheEntries bounds each in-memory cache (envelope integrity, chain
	// validations, trust stores, revocation results, timestamp tokens,
	// plugin metadata, certificate descriptions); default
	// DefaultCacheEntries.
	CacheEntries int
}

// Verifier evaluates signatures under trust-policy statements. It is safe
// for concurrent use. Everything that repeats across the signatures of a
// run is computed once and kept in the Verifier: the integrity of each
// envelope, the validation of each certificate chain, the certificates of
// each trust store, the revocation status of each certificate chain (a
// chain without OCSP or CRL reuses the validation integrity made), the
// verification of each RFC 3161 timestamp token, the metadata of each
// plugin, the names and thumbprints of each certificate, and CRLs until
// their NextUpdate. A Verifier is meant to live for one run: trust stores,
// revocation and plugins are read once per Verifier.
//
// With Options.CRLBundle, every certificate below the root of a chain is
// judged against the bundle's CRL of its issuer (a CRL that names the
// issuer and verifies with its key; a current one preferred), by
// notation-core-go's own CRL rules: revoked fails the check as "is
// revoked"; an expired CRL, or one with an unsupported critical extension,
// leaves the status unknown. A certificate that names OCSP responders or
// CRL distribution points while the bundle has no CRL of its issuer is
// unknown, as when its responders cannot be reached (notation-core-go
// v1.3.0 revocation/internal/crl CertCheckStatus on a failed download),
// and unknown fails the check as notation does. A certificate that names
// no server and whose issuer has no CRL in the bundle is non-revocable, as
// without a bundle. Nothing is asked over the network.
type Verifier struct {
	opts         Options
	codeSigning  revocation.Validator
	timestamping revocation.Validator
	bundle       *crlbundle.Bundle // Options.CRLBundle, nil without one

	envelopes   *cache[string, integrityEntry]
	chains      *cache[string, chainEntry] // certificate chain validations (integrity)
	stores      *cache[truststore.Ref, storeEntry]
	revocations *cache[string, revocationEntry]
	tokens      *cache[string, tokenEntry]
	metadata    *cache[string, metadataEntry]
	keyward     sharedPlugin      // keyward's in-process verification plugin (inprocess.go)
	certs       *certDescriptions // names and thumbprints of certificates
}

// NewVerifier returns a Verifier with its own caches.
func NewVerifier(opts Options) (*Verifier, error) {
	if opts.TrustStore == nil {
		return nil, errors.New("verify: Options.TrustStore is required")
	}
	if opts.OCSPTimeout <= 0 {
		opts.OCSPTimeout = DefaultOCSPTimeout
	}
	if opts.CRLTimeout <= 0 {
		opts.CRLTimeout = DefaultCRLTimeout
	}
	if opts.CacheEntries <= 0 {
		opts.CacheEntries = DefaultCacheEntries
	}
	v := &Verifier{
		opts:        opts,
		envelopes:   newCache[string, integrityEntry](opts.CacheEntries),
		chains:      newCache[string, chainEntry](opts.CacheEntries),
		stores:      newCache[truststore.Ref, storeEntry](opts.CacheEntries),
		revocations: newCache[string, revocationEntry](opts.CacheEntries),
		tokens:      newCache[string, tokenEntry](opts.CacheEntries),
		metadata:    newCache[string, metadataEntry](opts.CacheEntries),
		certs:       newCertDescriptions(opts.CacheEntries),
	}
	if opts.CRLBundle != "" {
		b, err := crlbundle.Read(opts.CRLBundle)
		if err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		v.bundle = b
	}
	// One CRL fetcher serves both purposes, so a CRL is fetched once per
	// run; then the caller's cache; then the network (spec "CRL": OCSP
	// first, CRL fallback, HTTP only; notation-core-go implements both).
	httpFetcher, err := corecrl.NewHTTPFetcher(&http.Client{Timeout: opts.CRLTimeout})
	if err != nil {
		return nil, fmt.Errorf("verify: crl fetcher: %w", err)
	}
	if opts.CRLCache != nil {
		httpFetcher.Cache = opts.CRLCache
	}
	httpFetcher.DiscardCacheError = true // a broken cache never fails verification (as notation's CLI)
	fetcher := &runFetcher{next: httpFetcher, cache: newCache[string, fetchEntry](opts.CacheEntries)}
	ocspClient := &http.Client{Timeout: opts.OCSPTimeout}
	for _, p := range []struct {
		purpose purpose.Purpose
		dst     *revocation.Validator
	}{{purpose.CodeSigning, &v.codeSigning}, {purpose.Timestamping, &v.timestamping}} {
		val, err := revocation.NewWithOptions(revocation.Options{
			OCSPHTTPClient:   ocspClient,
			CRLFetcher:       fetcher,
			CertChainPurpose: p.purpose,
		})
		if err != nil {
			return nil, fmt.Errorf("verify: revocation validator: %w", err)
		}
		*p.dst = val
	}
	return v, nil
}

// Request says what a signature is verified for.
type Request struct {
	// Statement is the trust-policy statement that applies to the artifact.
	Statement Statement
	// Artifact is the descriptor of the artifact's manifest: the payload's
	// targetArtifact must have the same digest, size and media type.
	Artifact ocispec.Descriptor
	// Reference names the artifact in messages (host/repo@digest).
	Reference string
	// PluginConfig is passed to verification plugins
	// (notation verify --plugin-config).
	PluginConfig map[string]string
	// UserMetadata are key/value pairs that must all be in the payload's
	// targetArtifact.annotations (notation verify --user-metadata).
	UserMetadata map[string]string
}

// Envelope is one signature envelope to evaluate.
type Envelope struct {
	// MediaType is application/jose+json or application/cose.
	MediaType string
	// Bytes is the envelope.
	Bytes []byte
	// Manifest describes the signature manifest the envelope came from,
	// if any; its digest names the signature in results and messages.
	Manifest ocispec.Descriptor

	release func()
}

// Release tells the envelope's source that it has been judged. It is
// called by VerifyArtifact after each evaluation; Verify does not call it.
func (e Envelope) Release() {
	if e.release != nil {
		e.release()
	}
}

// CheckName names one step of the evaluation of a signature. The steps run
// in the order of [Checks].
type CheckName string

// The checks, in the order notation-go v1.3.2 runs them
// (verifier.processSignature, then verifier.Verify).
const (
	// CheckIntegrity: the envelope parses and its signature verifies with
	// the leaf key; the chain is well formed; the payload is the v1 type.
	CheckIntegrity CheckName = "integrity"
	// CheckPluginDiscovery: the verification plugin the signature names is
	// installed, recent enough and can verify.
	CheckPluginDiscovery CheckName = "pluginDiscovery"
	// CheckAuthenticity: a certificate of the chain is in a trust store of
	// the signing scheme's type.
	CheckAuthenticity CheckName = "authenticity"
	// CheckTrustedIdentity: the leaf is one of the trusted identities
	// (or the plugin says so). Its action is authenticity's.
	CheckTrustedIdentity CheckName = "trustedIdentity"
	// CheckExpiry: the signature has not expired.
	CheckExpiry CheckName = "expiry"
	// CheckAuthenticTimestamp: the chain was valid when the signature was
	// made (authentic signing time, RFC 3161 timestamp) or is valid now.
	CheckAuthenticTimestamp CheckName = "authenticTimestamp"
	// CheckRevocation: no certificate of the signing chain is revoked
	// (OCSP, CRL, or the plugin).
	CheckRevocation CheckName = "revocation"
	// CheckPluginVerification: the verification plugin's verify-signature
	// call succeeded and answered for everything it was asked.
	CheckPluginVerification CheckName = "pluginVerification"
	// CheckTargetArtifact: the payload names the artifact being verified.
	CheckTargetArtifact CheckName = "targetArtifact"
	// CheckUserMetadata: the payload carries the user metadata asked for.
	CheckUserMetadata CheckName = "userMetadata"
)

// Checks returns the checks in evaluation order.
func Checks() []CheckName {
	return []CheckName{
		CheckIntegrity, CheckPluginDiscovery, CheckAuthenticity, CheckTrustedIdentity,
		CheckExpiry, CheckAuthenticTimestamp, CheckRevocation, CheckPluginVerification,
		CheckTargetArtifact, CheckUserMetadata,
	}
}

// PolicyCheck is the trust-policy check whose action governs c, and the
// verification type notation reports a failure of c under; "" for the
// checks notation always enforces (plugin discovery and the plugin call,
// the target artifact and user metadata).
func (c CheckName) PolicyCheck() policy.Check {
	switch c {
	case CheckIntegrity:
		return policy.CheckIntegrity
	case CheckAuthenticity, CheckTrustedIdentity:
		return policy.CheckAuthenticity
	case CheckExpiry:
		return policy.CheckExpiry
	case CheckAuthenticTimestamp:
		return policy.CheckAuthenticTimestamp
	case CheckRevocation:
		return policy.CheckRevocation
	}
	return ""
}

// Outcome is how a check ended.
type Outcome string

// The outcomes.
const (
	// OutcomePassed: the check ran and passed.
	OutcomePassed Outcome = "passed"
	// OutcomeFailed: the check ran and failed; with action log the
	// evaluation went on.
	OutcomeFailed Outcome = "failed"
	// OutcomeSkipped: the check did not apply or its action is skip; the
	// message says which.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeNotRun: an earlier enforced failure ended the evaluation.
	OutcomeNotRun Outcome = "not-run"
)

// CheckResult is the result of one check of one signature.
type CheckResult struct {
	Check CheckName `json:"check"`
	// Action is the effective action: enforce, log or skip.
	Action  policy.Action `json:"action"`
	Outcome Outcome       `json:"outcome"`
	// Message says why the check failed or was skipped, or what passed, in
	// notation's words wherever notation has some.
	Message string `json:"message,omitempty"`
	// Detail is the underlying cause, when notation's message hides it.
	Detail string `json:"detail,omitempty"`
	// Inconclusive marks failures notation reports as inconclusive (the
	// signature could not be judged, e.g. a plugin or a store is missing).
	Inconclusive bool `json:"inconclusive,omitempty"`
}

// Result is the evaluation of one signature.
type Result struct {
	// Signature is the digest of the signature manifest ("" if unknown).
	Signature string `json:"signature,omitempty"`
	// MediaType is the envelope's media type.
	MediaType string `json:"mediaType"`
	// Statement and Level name the statement applied.
	Statement string       `json:"statement"`
	Level     policy.Level `json:"level"`
	// Passed reports whether the signature verifies under the statement.
	Passed bool `json:"passed"`
	// FailedCheck is the enforced check that failed ("" when Passed).
	FailedCheck CheckName `json:"failedCheck,omitempty"`
	// Checks holds every check, in evaluation order.
	Checks []CheckResult `json:"checks"`
	// Signer describes the signature once its integrity is verified.
	Signer *Signer `json:"signer,omitempty"`
	// Err is the error notation's verifier returns for this signature (nil
	// when Passed): a *CheckError whose message is notation's.
	Err error `json:"-"`
}

// Check returns the result of check c.
func (r *Result) Check(c CheckName) *CheckResult {
	for i := range r.Checks {
		if r.Checks[i].Check == c {
			return &r.Checks[i]
		}
	}
	return nil
}

// Warnings returns the checks that failed with action log: notation prints
// them as warnings when the signature passes.
func (r *Result) Warnings() []CheckResult {
	var out []CheckResult
	for _, c := range r.Checks {
		if c.Outcome == OutcomeFailed && c.Action == policy.ActionLog {
			out = append(out, c)
		}
	}
	return out
}

// Signer describes who signed, how and when.
type Signer struct {
	// Subject is the leaf certificate's subject (RFC 2253 form, as notation
	// matches trusted identities against it).
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// SigningScheme is notary.x509 or notary.x509.signingAuthority.
	SigningScheme string `json:"signingScheme"`
	// EnvelopeType is the envelope's media type.
	EnvelopeType string `json:"envelopeType"`
	// SignatureAlgorithm is e.g. RSASSA-PSS-SHA-256 or ECDSA-SHA-384.
	SignatureAlgorithm string `json:"signatureAlgorithm"`
	// SigningAgent is the unsigned, unverified signing agent.
	SigningAgent string `json:"signingAgent,omitempty"`
	// SigningTime is the signing time; authentic (signed and verified
	// against the chain) only under notary.x509.signingAuthority.
	SigningTime          time.Time `json:"signingTime"`
	AuthenticSigningTime bool      `json:"authenticSigningTime"`
	// Expiry is the signature's expiry, if it has one.
	Expiry *time.Time `json:"expiry,omitempty"`
	// Timestamp is the RFC 3161 timestamp, set only once verified.
	Timestamp *Timestamp `json:"timestamp,omitempty"`
	// VerificationPlugin and VerificationPluginMinVersion are the plugin
	// the signature asks for.
	VerificationPlugin           string `json:"verificationPlugin,omitempty"`
	VerificationPluginMinVersion string `json:"verificationPluginMinVersion,omitempty"`
	// Chain is the certificate chain, leaf first.
	Chain []Certificate `json:"chain"`
	// TargetArtifact is the payload's descriptor, if the payload parses.
	TargetArtifact *ocispec.Descriptor `json:"targetArtifact,omitempty"`
}

// Certificate describes one certificate of a chain.
type Certificate struct {
	Subject      string    `json:"subject"`
	Issuer       string    `json:"issuer"`
	SerialNumber string    `json:"serialNumber"`
	NotBefore    time.Time `json:"notBefore"`
	NotAfter     time.Time `json:"notAfter"`
	// SHA256 and SHA1 are lowercase hex thumbprints of the DER encoding
	// (SHA256 is what notation annotates signature manifests with).
	SHA256 string `json:"sha256"`
	SHA1   string `json:"sha1"`
}

// Timestamp is a verified RFC 3161 timestamp.
type Timestamp struct {
	// Time is the TSTInfo genTime; the signature existed within
	// [Time-Accuracy, Time+Accuracy].
	Time     time.Time     `json:"time"`
	Accuracy time.Duration `json:"accuracy"`
	// Authority is the subject of the TSA's signing certificate.
	Authority string `json:"authority"`
}

// contextErr reports whether ctx ended; results computed then are not
// cached.
func contextErr(ctx context.Context) bool { return ctx.Err() != nil }
