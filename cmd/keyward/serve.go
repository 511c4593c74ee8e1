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
		Short: "Serve an HTTP API that verifies artifacts against a trust policy",
		Long: `Serve POST /v1/verify: verify artifact references with the same pipeline
and the same verdicts as keyward verify, for programs that ask over HTTP.

  POST /v1/verify  {"references": ["host/repository@sha256:..." or ":tag", ...]}
                   answers {"results": [...]}, one object of
                   verify-result.schema.json per reference, in order (as
                   keyward verify --output json prints). A reference that
                   cannot be verified in time, or at all, is answered
                   verified: false with an error: never verified: true.
                   At most 1000 references and 1 MiB a request.
  GET /healthz     200 while the process runs.
  GET /readyz      200 once the policy is loaded and the server listens.
  GET /metrics     Prometheus metrics: requests and latency by endpoint,
                   verdicts (verified, failed, skipped, error), verification
                   latency, cache hits and misses by layer (local, redis,
                   singleflight), registry requests and errors, policy
                   reloads, Redis errors, Go runtime and process.

FILE (YAML or JSON, serve-config.schema.json at the repository root) names
the address, the TLS certificate and key (read again when they change on
disk: a rotation needs no restart) or plainHTTP: true for local use, the
trust policy and trust store, how registries are reached, the request
timeout (default 8s, below a webhook's timeoutSeconds), the caches and
the log. Registry credentials come from the docker config
(registry.dockerConfig, else $DOCKER_CONFIG, else ~/.docker/config.json)
and its credential helpers.

Caches (cache: in FILE), shared by all requests:
  verdicts         by artifact digest, trust policy and trust store:
                   verified ones for cache.ttl (5m), failed ones for
                   cache.failureTTL (10s); at most cache.maxEntries (10000)
                   and half of cache.maxBytes (128 MiB, estimated). One
                   verification per artifact however many ask at once.
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

The policy is read at start: restart to change it. On SIGINT or SIGTERM
the server stops accepting connections and answers the requests in flight
before it exits.

Not yet: Kubernetes admission webhooks, the Gatekeeper external-data
provider, per-namespace policy sets, a Helm chart.`,
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
