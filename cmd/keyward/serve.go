package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/serve"
)

// serveGrace is how long keyward serve may take to stop after SIGINT or
// SIGTERM: the server drains requests in flight for at most the request
// timeout (below serve.MaxWebhookTimeout) and 5 s more, within this.
const serveGrace = serve.MaxWebhookTimeout + 10*time.Second

func newServeCommand(e *env) *cobra.Command {
	var configFile string
	c := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Serve an HTTP API, Kubernetes admission webhooks and a Gatekeeper provider that verify images",
		Long: `Serve the verification of artifacts and container images, with the same
pipeline and the same verdicts as keyward verify:

  POST /v1/verify  {"references": ["host/repository@sha256:..." or ":tag", ...]}
                   answers {"results": [...]}, one object of
                   verify-result.schema.json per reference, in order (as
                   keyward verify --output json prints). A reference that
                   cannot be verified in time, or at all, is answered
                   verified: false with an error: never verified: true.
                   At most 1000 references and 1 MiB a request.
  POST /v1/admission/validate
                   Kubernetes validating webhook (AdmissionReview v1): Pods,
                   pods/ephemeralcontainers, and the pod templates of
                   Deployments, StatefulSets, DaemonSets, ReplicaSets,
                   ReplicationControllers, Jobs and CronJobs, on CREATE and
                   UPDATE (by the images it adds or changes); every
                   container, init container and ephemeral container. Denied when an image does not verify, with the
                   image, its container and the failing check named; checks
                   a statement only logs (audit level, action log) come back
                   as warnings. Images of a skip statement are allowed
                   without a registry request. Other requests are allowed
                   untouched. Dry runs are judged alike.
  POST /v1/admission/mutate
                   Kubernetes mutating webhook: verifies as above and pins
                   each verified image without digest, new or changed by the
                   request, to the digest verified (JSON Patch:
                   image: repo:tag -> repo:tag@sha256:...). Idempotent.
  POST /v1/gatekeeper/verify
                   Gatekeeper external-data provider: a ProviderRequest
                   (externaldata.gatekeeper.sh/v1beta1 or v1alpha1) whose
                   keys are images, optionally [namespace]image, answered
                   with one item per key whose value is the
                   verify-result.schema.json object plus Ratify's isSuccess
                   and verifierReports, so Ratify's constraint templates
                   work; a key that does not verify has isSuccess: false.
  GET /healthz     200 while the process runs.
  GET /readyz      200 once the policy is loaded and the server listens.
  GET /metrics     Prometheus metrics: requests and latency by endpoint,
                   verdicts (verified, failed, skipped, error), verification
                   latency, cache hits and misses by layer (local, redis,
                   singleflight), registry requests and errors, policy
                   reloads, Redis errors, Go runtime and process.

Images are named as in a pod spec and expanded as the kubelet pulls them
(nginx is docker.io/library/nginx:latest). A webhook request ends before
the timeout the apiserver sends (?timeout=), and before timeouts.request;
an image not verified by then is denied, never allowed.

FILE (YAML or JSON, serve-config.schema.json at the repository root) names
the address, the TLS certificate and key (read again when they change on
disk: a rotation needs no restart) or plainHTTP: true for local use, the
default trust policy and trust store (policy), per-namespace policy sets
(policySets), how registries are reached and with which credentials, the
Kubernetes API, the request timeout (default 8s, below a webhook's
timeoutSeconds), the caches, the log, and which endpoints are served
(webhooks.validating, webhooks.mutating, gatekeeper.enabled; all by
default). Each admission decision is logged as one JSON line per image
(msg "admission decision": image, digest, namespace, kind, name,
container, statement, verdict, dryRun, uid).

Caches (cache: in FILE), shared by all requests:
  verdicts         by artifact digest, trust policy and trust store:
                   verified ones for cache.ttl (5m), failed ones for
                   cache.failureTTL (10s); at most cache.maxEntries (10000)
                   and half of cache.maxBytes (128 MiB, estimated: about
                   0.4 KiB a verified verdict whose signer other verdicts
                   share). One verification per artifact however many ask
                   at once.
  tags             a tag's digest for cache.resolutionTTL (30s; 0s: every
                   request); failed resolutions are not kept.
  signatures       manifests and envelopes by digest, the other half of
                   cache.maxBytes. One registry client keeps its
                   connections and tokens across requests.
  cache.redis      optional {address, passwordFile, db, keyPrefix
                   (keyward:verdict:), timeout (100ms)}: verdicts shared by
                   replicas. Asked after the local cache, before verifying;
                   what it holds is checked before use. Redis down or slow
                   means the local cache only (logged, counted), never an
                   allow. Anyone who can write to it can forge verdicts:
                   give it a password and keep it on a private network.

Log (log: in FILE): format json (default) or text, on standard error;
level debug (one line per request), info (default), warn, error. Failed
requests (5xx) and verification errors are warnings.

Policy sets: POST /v1/verify uses policy. A request on behalf of a
namespace (the admission webhooks) uses the first policySets entry that
lists the namespace (namespaces) or whose namespaceSelector (matchLabels,
matchExpressions: In, NotIn, Exists, DoesNotExist, as in Kubernetes)
matches the namespace's labels, else policy. Labels are read through the
Kubernetes API (kubernetes.kubeconfig, else the in-cluster configuration)
and kept 10s; when they cannot be read, the image is denied.

Hot reload: every reload.interval (default 10s) the trust policy and trust
store files of every set, and policy/policySets of FILE, are checked. A
changed set is parsed and its trust stores loaded before it replaces the
old one; an invalid one is refused, logged and counted, and the old one
keeps serving (/readyz stays ready). Other fields of FILE need a restart.

Registry credentials, per registry the first source that has one: the
pod's imagePullSecrets (kubernetes.pullSecrets: true; dockerconfigjson and
dockercfg secrets of its namespace), registry.credentials (username and
passwordFile: the password is only read from a file), the docker config
(registry.dockerConfig, else $DOCKER_CONFIG, else ~/.docker/config.json)
and its credential helpers, else anonymous. A registry that refuses the
credential denies the image. RBAC: get on namespaces (selectors) and get
on secrets in the namespaces served (pullSecrets).

On SIGINT or SIGTERM the server stops accepting connections and answers
the requests in flight before it exits.

The Helm chart and plain manifests are in deploy/ (docs/serve.md).`,
		Example: `  keyward serve --config serve.yaml
  curl -s https://127.0.0.1:8443/v1/verify --cacert ca.crt \
    -d '{"references": ["registry.example.com/app@sha256:..."]}'`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if configFile == "" {
				return usageErrorf("--config is required: give the configuration file (serve-config.schema.json)")
			}
			cfg, err := serve.LoadConfig(configFile)
			if err != nil {
				var ce *serve.ConfigError
				if errors.As(err, &ce) {
					fmt.Fprintln(e.stderr, ce.Error())
					return &exitError{status: exitUsage}
				}
				return err
			}
			log, err := serve.NewLogger(cfg.Log, e.stderr)
			if err != nil {
				return fmt.Errorf("%s: %w", configFile, err)
			}
			serve.RouteRedisLog(log)
			s, err := serve.New(cfg, serve.Options{Getenv: e.getenv, PluginDir: pluginDir(e), Logger: log})
			if err != nil {
				return fmt.Errorf("%s: %w", configFile, err)
			}
			return s.Run(c.Context())
		},
	}
	c.Flags().StringVar(&configFile, "config", "", "configuration file, YAML or JSON (serve-config.schema.json)")
	return c
}
