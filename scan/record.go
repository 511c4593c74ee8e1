package scan

import (
	"time"

	"github.com/keyward/keyward/verify"
)

// RecordVersion is the version of the record format
// (scan-result.schema.json).
const RecordVersion = "1"

// Record kinds.
const (
	// KindArtifact: an image, image index, platform manifest or other
	// artifact of a repository.
	KindArtifact = "artifact"
	// KindOrphan: a signature, attestation or SBOM whose subject is no
	// longer in the repository.
	KindOrphan = "orphan"
	// KindSkipped: a tag of a repository whose trust policy statement has
	// level skip; counted, not fetched.
	KindSkipped = "skipped"
)

// Record statuses.
const (
	// StatusSigned: at least one signature (of any format) was found.
	StatusSigned = "signed"
	// StatusUnsigned: no signature in the registry; formats kept outside
	// it are listed in NotDeterminable.
	StatusUnsigned = "unsigned"
	// StatusError: the artifact could not be read completely; Errors says
	// why, and the signatures found so far are listed.
	StatusError = "error"
	// StatusOrphaned: the record is an orphaned signature.
	StatusOrphaned = "orphaned"
	// StatusNotScanned: a skipped tag, not fetched.
	StatusNotScanned = "not-scanned"
)

// Signature roles.
const (
	RoleSignature   = "signature"
	RoleAttestation = "attestation"
	RoleSBOM        = "sbom"
	RoleOther       = "other"
)

// Signature formats.
const (
	// FormatNotation: a Notary Project signature (JWS or COSE envelope).
	FormatNotation = "notation"
	// FormatSimpleSigning: a cosign (or containers/image) Simple Signing
	// payload with a detached signature.
	FormatSimpleSigning = "cosign-simple-signing"
	// FormatSigstoreBundle: a Sigstore bundle (v0.3 and its legacy media
	// types).
	FormatSigstoreBundle = "sigstore-bundle"
	// FormatDSSE: a cosign attestation (DSSE envelope).
	FormatDSSE = "cosign-dsse"
	// FormatSBOM: an SBOM document, unsigned by itself.
	FormatSBOM = "sbom"
	// FormatUnknown: a referrer of another artifact type.
	FormatUnknown = "unknown"
)

// Signature sources.
const (
	SourceReferrers = "referrers"  // referrers API or its tag schema
	SourceCosignTag = "cosign-tag" // sha256-<hex>.sig, .att, .sbom
	SourceLayout    = "layout"     // an OCI image layout's manifests
)

// Verdicts.
const (
	VerdictVerified = "verified"
	VerdictFailed   = "failed"
	VerdictSkipped  = "skipped"
	// VerdictNotVerifiable: only cosign signatures; keyward verify fails
	// the artifact, which is signed, but not in a form a Notary Project
	// trust policy can verify.
	VerdictNotVerifiable = "not-verifiable"
)

// NotDeterminable lists the signature kinds a registry cannot show: Docker
// Content Trust (a separate Notary v1 server) and the Simple Signing
// lookaside (a separate web server or a registry extension).
var NotDeterminable = []string{"docker-content-trust", "simple-signing-lookaside"}

// Record is one artifact of the scan: one line of --output json, valid
// against scan-result.schema.json.
type Record struct {
	Version string `json:"version"`
	Kind    string `json:"kind"`
	// Registry is the registry host; Layout the OCI layout folder.
	Registry   string `json:"registry,omitempty"`
	Layout     string `json:"layout,omitempty"`
	Repository string `json:"repository"`
	// Reference is host/repository@digest (or path@digest); for a
	// skipped tag, host/repository:tag.
	Reference    string   `json:"reference"`
	Digest       string   `json:"digest,omitempty"`
	MediaType    string   `json:"mediaType,omitempty"`
	ArtifactType string   `json:"artifactType,omitempty"`
	Size         int64    `json:"size,omitempty"`
	Tags         []string `json:"tags"`
	// Index is the digest of the image index a platform manifest was
	// found in; Platform is its os/architecture[/variant].
	Index    string `json:"index,omitempty"`
	Platform string `json:"platform,omitempty"`
	// Children are an image index's platform manifests.
	Children []Child `json:"children,omitempty"`
	// Created is the creation time, CreatedFrom where it came from
	// ("annotation" or "config").
	Created     *time.Time `json:"created,omitempty"`
	CreatedFrom string     `json:"createdFrom,omitempty"`
	// Subject is, for an orphan, the digest its manifest names.
	Subject string `json:"subject,omitempty"`
	Status  string `json:"status"`
	// Signatures lists signatures, attestations and SBOMs.
	Signatures      []*Signature  `json:"signatures"`
	NotDeterminable []string      `json:"notDeterminable,omitempty"`
	Verification    *Verification `json:"verification,omitempty"`
	Findings        []string      `json:"findings,omitempty"`
	Errors          []string      `json:"errors,omitempty"`
	// Bytes is what was fetched for the record.
	Bytes int64 `json:"bytes"`
}

// Child is a platform manifest of an image index.
type Child struct {
	Digest    string `json:"digest"`
	MediaType string `json:"mediaType"`
	Size      int64  `json:"size"`
	Platform  string `json:"platform,omitempty"`
}

// Signature is a signature, attestation or SBOM attached to an artifact.
type Signature struct {
	Role   string `json:"role"`
	Format string `json:"format"`
	Source string `json:"source"`
	// Manifest is the digest of the manifest holding it; Tag the cosign
	// tag it was found by.
	Manifest     string `json:"manifest"`
	Tag          string `json:"tag,omitempty"`
	ArtifactType string `json:"artifactType,omitempty"`
	// MediaType is the envelope's or layer's media type.
	MediaType     string `json:"mediaType,omitempty"`
	PredicateType string `json:"predicateType,omitempty"`
	// SignedDigest is the digest a Simple Signing payload names
	// (docker-manifest-digest), DockerReference its identity claim,
	// Creator its optional.creator.
	SignedDigest    string `json:"signedDigest,omitempty"`
	DockerReference string `json:"dockerReference,omitempty"`
	Creator         string `json:"creator,omitempty"`
	// Identities are the signers (one per signature layer).
	Identities []*Identity `json:"identities"`
	// Verified: the signature was verified under the trust policy.
	Verified bool     `json:"verified"`
	Findings []string `json:"findings,omitempty"`
}

// Identity is a signer in the forms a trust policy takes. Nothing in it is
// authenticated unless Verified.
type Identity struct {
	// Subject and Issuer are the leaf certificate's names (RFC 2253).
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	// X509Subject is the trusted identity notation matches, as
	// "x509.subject: <DN>".
	X509Subject string `json:"x509Subject,omitempty"`
	// SANs are the leaf's subject alternative names, as uri:, email:,
	// dns: or ip: followed by the value.
	SANs []string `json:"sans,omitempty"`
	// SHA256 is the leaf's thumbprint (hex); SPKISHA256 the base64
	// SHA-256 of its SubjectPublicKeyInfo (the key pin, cosign's hint).
	SHA256     string `json:"sha256,omitempty"`
	SPKISHA256 string `json:"spkiSha256,omitempty"`
	// OIDCIssuer and Fulcio are a Fulcio certificate's issuer and its
	// other extensions (1.3.6.1.4.1.57264.1.*), by name or dotted OID.
	OIDCIssuer string            `json:"oidcIssuer,omitempty"`
	Fulcio     map[string]string `json:"fulcio,omitempty"`
	// KeyHint identifies a key-based signature's public key: the base64
	// SHA-256 of its SubjectPublicKeyInfo (Sigstore bundle hint, or the key
	// in a Rekor entry), unauthenticated.
	KeyHint string `json:"keyHint,omitempty"`
	// TrustedIdentities are ready-to-paste trustedIdentities entries.
	TrustedIdentities []string `json:"trustedIdentities,omitempty"`
	Verified          bool     `json:"verified"`
}

// Verification is what keyward verify says of the artifact.
type Verification struct {
	Verdict     string `json:"verdict"`
	Verified    bool   `json:"verified"`
	Statement   string `json:"statement,omitempty"`
	Level       string `json:"level,omitempty"`
	FailedCheck string `json:"failedCheck,omitempty"`
	// Signature is the digest of the signature that passed.
	Signature string                 `json:"signature,omitempty"`
	Error     *verify.ReferenceError `json:"error,omitempty"`
}

// FailedPolicy reports whether the record fails the trust policy (or could
// not be scanned): what makes keyward scan exit 1.
func (r *Record) FailedPolicy() bool {
	if r.Kind == KindSkipped {
		return false
	}
	if r.Status == StatusError {
		return true
	}
	return r.Verification != nil && !r.Verification.Verified
}

// key identifies a record in a state file.
func (r *Record) key() string {
	if r.Kind == KindSkipped {
		return "skip " + r.Reference
	}
	return r.Kind + " " + r.Reference
}
