// Package scan walks registries (or an OCI image layout) and reports, one
// record per artifact, which signatures each artifact has, of which kind,
// who signed them (in the identity forms a trust policy accepts), and, with
// a trust policy, the verdict keyward verify gives it.
//
// # What is read
//
// Repositories come from the catalog (/v2/_catalog, paginated by the Link
// header) or are named by the caller; a registry that refuses the catalog
// is an error ([oci.CatalogRefusedError]), never an empty report. Each
// repository's tags are listed (paginated), partitioned into artifact tags
// and attachment tags (cosign's sha256-<hex>.sig, .att and .sbom, and the
// referrers tag schema's sha256-<hex>), and the artifact tags resolved to
// digests; an image index is an artifact and so is each of its platform
// manifests (all platforms, or those of Options.Platforms).
//
// Per artifact, signatures are found through the referrers API or its tag
// schema (Notary Project signatures of both manifest forms, cosign OCI 1.1
// signatures, Sigstore bundles v0.3, in-toto attestations, SBOMs) and
// through cosign's legacy tags (formats research A0–A3 in
// shared/formats.md). Docker Content Trust and the Simple Signing
// lookaside live outside the registry: a record says they are not
// determinable rather than calling the artifact unsigned.
//
// Attachment tags and referrers tag-schema indexes whose subject is no
// longer in the repository are reported as orphaned signatures.
//
// # Age
//
// An artifact's creation time is the org.opencontainers.image.created
// annotation of its manifest when present, else the "created" field of its
// image configuration (read only when an age filter is given). Its age is
// the time from then to the start of the scan. An artifact whose creation
// time cannot be found passes every age filter: a filter narrows an audit,
// it does not hide what cannot be dated.
//
// # Manners
//
// Requests go through package oci's registry client (bounded requests,
// timeouts, retries with Retry-After, authentication by registryauth).
// Work is bounded per registry and in total; a registry answering 429
// pauses every request to it until its Retry-After has passed (at most
// MaxRetryAfter). Bytes read for one artifact are capped (Options.MaxBytes).
// A state file makes a killed scan resumable: finished records are
// appended to it, and a later run with the same file reports them again
// without fetching anything for them.
package scan
