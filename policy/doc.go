// Package policy is keyward's model of notation (Notary Project) trust
// policies: the documents, the trust stores they reference, and the choice
// of the statement that applies to an artifact. Every other part of keyward
// reads policies through it.
//
// # Documents
//
// [Parse] and [LoadFile] read an OCI trust policy (trustpolicy.json,
// trustpolicy.oci.json) or a blob trust policy (trustpolicy.blob.json) and
// return a [*Document] only if it passes every rule:
//
//   - the JSON Schema trustpolicy.schema.json ([Schema], embedded from the
//     repository root), which also rejects unknown properties: notation
//     ignores them, so a misspelt key silently weakens a policy;
//   - every rule notation-go v1.3.2 enforces (trustpolicy.Document.Validate),
//     with notation's own messages, so that users can compare;
//   - for blob documents, notation-go's unreleased blob rules and the
//     specification's (one global statement, which may not skip).
//
// Unlike notation, validation does not stop at the first problem: a
// [*ValidationError] lists each [Problem] with its JSON pointer, line and
// column, statement, bad value and fix. keyward is stricter than notation
// only where [Rules] says the source is "keyward" or "specification"
// (unknown properties, repeated keys, null values, trailing text, invalid
// UTF-8, a global blob statement with level skip, keyward: identities that
// do not parse, see package identity); the differential test
// against notation-go lists those cases by name.
//
// Comments cite the Notary Project specification
// (specs/trust-store-trust-policy.md) as spec "<section title>", and
// notation-go v1.3.2 by function or file.
//
// A Document never changes once loaded: accessors return copies, and its
// [*Statement] values are read-only, so one Document can serve concurrent
// verifications.
//
// # Statements and actions
//
// A statement's level presets an action (enforce, log, skip) for each
// [Check]; overrides replace some. [EffectiveAction], read through
// [Statement.Action], is the only place this is computed: validate, lint,
// explain and verify all use it. [Statement.TimestampVerified] says when an
// RFC 3161 timestamp is verified, and [Statement.VerifyIdentity] (or
// [Identity.Matches]) decides whether a signing certificate is one of the
// trusted identities, with notation's rules: the leaf subject as rendered by
// Go's pkix.Name.String(), parsed by [ParseDN], must contain every
// attribute of some x509.subject identity.
//
// # Selection
//
// [Document.Select] picks the statement for an OCI reference
// (host[:port]/repository@digest, or :tag): the statement listing the
// repository exactly, else the "*" statement. [Document.SelectBlob] picks a
// blob statement by name, or the global one.
//
// # Trust stores
//
// Package truststore reads the named stores statements reference
// ([truststore.Ref]) with notation-go's rules and messages; [Lint],
// [Explain] and [CheckTrustStores] take a [*truststore.TrustStore].
//
// # Trust boundary
//
// Policy files and certificate files are untrusted input: documents are
// bounded by [MaxDocumentSize] (and certificate files by
// truststore.MaxCertificateFileSize), symlinks and special files are
// refused, and no input makes the package panic (fuzz tests check this).
// [Lint] and [Explain] only read.
package policy
