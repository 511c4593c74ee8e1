// Package serve is the library behind keyward serve: a long-running HTTP
// API that verifies artifact references with the same pipeline as keyward
// verify ([verify.Batch]), so that every front end reaches the same
// verdicts.
//
// This package holds the configuration ([Config], loaded and validated by
// [LoadConfig] against serve-config.schema.json), the server ([Server]:
// HTTPS with certificates reloaded from disk, /healthz, /readyz and
// POST /v1/verify, and the Kubernetes admission webhooks and Gatekeeper
// provider of package admission) and the verdict cache ([Cache]) every
// request shares. Per-namespace policy sets are not implemented yet.
//
// The server never fails open: a reference that cannot be verified in time,
// or whose verification fails in any way, is answered verified: false with
// an error.
package serve
