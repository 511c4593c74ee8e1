package policy

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/keyward/keyward/truststore"
)

// ExplainedReference is the artifact reference an explanation is for.
type ExplainedReference struct {
	// Raw is the reference as given.
	Raw string `json:"reference"`
	// Repository is the registry scope the statement was selected by.
	Repository string `json:"repository"`
	// Digest is the digest the reference names, if any.
	Digest string `json:"digest,omitempty"`
	// Tag is the tag the reference names, if any.
	Tag string `json:"tag,omitempty"`
}

// Explanation says which statement applies to an artifact, why, and what
// verification under it does. It is plain data for text and JSON output.
type Explanation struct {
	File      string              `json:"file,omitempty"`
	Type      DocumentType        `json:"type"`
	Reference *ExplainedReference `json:"reference,omitempty"`
	// PolicyName is the blob policy name asked for ("" for the global one).
	PolicyName string `json:"policyName,omitempty"`

	Statement string `json:"statement"`
	Pointer   string `json:"pointer"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	Match     Match  `json:"match"`
	Reason    string `json:"reason"`
	// Notes are further facts worth knowing (a tag reference, a skip level).
	Notes []string `json:"notes,omitempty"`

	Level           Level           `json:"level"`
	Custom          bool            `json:"custom"`
	Checks          []CheckAction   `json:"checks"`
	VerifyTimestamp TimestampOption `json:"verifyTimestamp,omitempty"`
	// Timestamps says when RFC 3161 timestamps are verified.
	Timestamps string `json:"timestamps"`

	TrustStores       []StoreInfo    `json:"trustStores"`
	TrustedIdentities []IdentityInfo `json:"trustedIdentities"`
}

// StoreInfo describes one referenced trust store.
type StoreInfo struct {
	Ref  string          `json:"ref"`
	Type truststore.Type `json:"type"`
	Name string          `json:"name"`
	// Role says which signatures the store serves.
	Role string `json:"role"`
	Path string `json:"path,omitempty"`
	// Error is why the store cannot be used ("" when it loaded, or when no
	// trust store folder was given).
	Error        string     `json:"error,omitempty"`
	Certificates []CertInfo `json:"certificates,omitempty"`
}

// CertInfo describes one trusted certificate.
type CertInfo struct {
	File       string    `json:"file"`
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	NotBefore  time.Time `json:"notBefore"`
	NotAfter   time.Time `json:"notAfter"`
	CA         bool      `json:"ca"`
	SelfSigned bool      `json:"selfSigned"`
	SHA256     string    `json:"sha256"`
	// Status is "valid", "expired", "not yet valid" or "expires soon".
	Status string `json:"status"`
}

// IdentityInfo describes one trusted identity.
type IdentityInfo struct {
	Identity   string      `json:"identity"`
	Kind       string      `json:"kind"` // "wildcard", "x509.subject", "keyward" or "plugin"
	Attributes []Attribute `json:"attributes,omitempty"`
	Meaning    string      `json:"meaning"`
}

// ExplainOptions configures [Explain].
type ExplainOptions struct {
	// TrustStore, if set, is read to list the stores' certificates.
	TrustStore *truststore.TrustStore
	// Now is the time certificates are judged at (time.Now when zero).
	Now time.Time
}

// Explain describes the selected statement: its checks' effective actions
// (read through [Statement.Action]), when timestamps are verified, its
// trust stores and their certificates, and its trusted identities.
func Explain(d *Document, sel Selection, opts ExplainOptions) Explanation {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	s := sel.Statement
	e := Explanation{
		File: d.file, Type: d.typ,
		Statement: s.name, Pointer: s.pointer, Line: s.line, Column: s.column,
		Match: sel.Match, Reason: sel.Reason,
		Level: s.level, Custom: s.IsCustom(), Checks: s.Actions(),
		VerifyTimestamp: s.verifyTimestamp,
		TrustStores:     []StoreInfo{}, TrustedIdentities: []IdentityInfo{},
	}
	if d.typ == TypeOCI {
		ref := sel.Reference
		e.Reference = &ExplainedReference{Raw: ref.Raw, Repository: ref.Scope, Digest: ref.Digest.String(), Tag: ref.Tag}
		if ref.Tag != "" {
			e.Notes = append(e.Notes, fmt.Sprintf("%q is a tag: notation resolves it to a digest and verifies %s@<digest>; the statement is the same because selection reads only the repository", ref.Raw, ref.Scope))
		}
	}
	if s.level == LevelSkip {
		e.Notes = append(e.Notes, "level skip: notation accepts the artifact without fetching or verifying any signature")
	}
	e.Timestamps = timestampSummary(s)
	for _, ref := range s.stores {
		e.TrustStores = append(e.TrustStores, storeInfo(ref, opts.TrustStore, now))
	}
	for _, id := range s.identities {
		e.TrustedIdentities = append(e.TrustedIdentities, identityInfo(id))
	}
	return e
}

func timestampSummary(s *Statement) string {
	switch {
	case s.level == LevelSkip:
		return "never: the statement skips verification"
	case !s.HasTrustStoreType(truststore.TypeTSA):
		return "never: no tsa: trust store is listed, so every certificate of the signing chain must be valid at verification time"
	case !s.HasTrustStoreType(truststore.TypeCA):
		return "never: timestamps are verified only for notary.x509 signatures, and no ca: store is listed"
	case s.verifyTimestamp == TimestampAfterCertExpiry:
		return fmt.Sprintf("for notary.x509 signatures once a certificate of the signing chain has expired (verifyTimestamp afterCertExpiry); the timestamp must chain to the tsa: stores; authenticTimestamp failures are %s", actionVerb(s.Action(CheckAuthenticTimestamp)))
	default:
		return fmt.Sprintf("for every notary.x509 signature (verifyTimestamp always): a timestamp chaining to the tsa: stores is required; authenticTimestamp failures are %s", actionVerb(s.Action(CheckAuthenticTimestamp)))
	}
}

func actionVerb(a Action) string {
	switch a {
	case ActionEnforce:
		return "enforced"
	case ActionLog:
		return "logged"
	}
	return "skipped"
}

func storeInfo(ref truststore.Ref, ts *truststore.TrustStore, now time.Time) StoreInfo {
	si := StoreInfo{Ref: ref.String(), Type: ref.Type, Name: ref.Name}
	switch ref.Type {
	case truststore.TypeCA:
		si.Role = "trusted roots of notary.x509 signatures"
	case truststore.TypeSigningAuthority:
		si.Role = "trusted roots of notary.x509.signingAuthority signatures"
	case truststore.TypeTSA:
		si.Role = "trusted roots of RFC 3161 timestamp authorities"
	}
	if ts == nil {
		return si
	}
	si.Path = ts.Path(ref)
	st, err := ts.Load(ref)
	if err != nil {
		si.Error = err.Error()
		return si
	}
	for _, f := range st.Files {
		for _, c := range f.Certificates {
			si.Certificates = append(si.Certificates, certInfo(f.Name, c, now))
		}
	}
	return si
}

func certInfo(file string, c *x509.Certificate, now time.Time) CertInfo {
	sum := sha256.Sum256(c.Raw)
	ci := CertInfo{File: file, Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), CA: c.IsCA, SelfSigned: selfSigned(c),
		SHA256: hex.EncodeToString(sum[:]), Status: "valid"}
	switch {
	case now.After(c.NotAfter):
		ci.Status = "expired"
	case now.Before(c.NotBefore):
		ci.Status = "not yet valid"
	case c.NotAfter.Sub(now) < expiringSoon:
		ci.Status = "expires soon"
	}
	return ci
}

func identityInfo(id Identity) IdentityInfo {
	switch {
	case id.IsWildcard():
		return IdentityInfo{Identity: id.raw, Kind: "wildcard", Meaning: "any signing certificate that chains to the trust stores"}
	case id.IsX509Subject():
		return IdentityInfo{Identity: id.raw, Kind: "x509.subject", Attributes: id.dn.Attributes(),
			Meaning: fmt.Sprintf("signing certificates whose subject includes %s (other attributes may be present)", id.dn)}
	}
	if info, ok := keywardInfo(id); ok {
		return info
	}
	return IdentityInfo{Identity: id.raw, Kind: "plugin",
		Meaning: fmt.Sprintf("checked by a verification plugin (prefix %q); notation itself matches no certificate to it", id.prefix)}
}
