// Package serve is the library behind keyward serve: a long-running HTTP
// API that verifies artifact references with the same pipeline as keyward
// verify ([verify.Batch]), so that every front end reaches the same
// verdicts.
//
// This package holds the configuration ([Config], loaded and validated by
// [LoadConfig] against serve-config.schema.json), the server ([Server]:
// HTTPS with certificates reloaded from disk, /healthz, /readyz, /metrics
// and POST /v1/verify, and the Kubernetes admission webhooks and
// Gatekeeper provider of package admission), the verdict cache ([Cache])
// every request shares, optionally backed by Redis for the replicas of a
// deployment, the Prometheus metrics ([Metrics]) and the log
// ([NewLogger]). One registry client per credential set lives as long as
// the server: tag resolutions are kept for cache.resolutionTTL, signatures
// (by digest) within a byte bound, registry tokens until the registry
// refuses them.
//
// Requests on behalf of a Kubernetes namespace ([Server.VerifyImage]) are
// verified against the first policy set of policySets that lists the
// namespace or whose label selector matches its labels (read through
// client-go), else the default policy. Policy sets are reloaded when their
// files change, validated before they are swapped in ([Server.ReloadStats]
// counts reloads and refusals). Registry credentials come from the pod's
// image pull secrets, registry.credentials and the docker config, in that
// order.
//
// The server never fails open: a reference that cannot be verified in time,
// or whose verification fails in any way, is answered verified: false with
// an error.
package serve
