package main

import (
	"errors"
	"fmt"
	"log/slog"
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

FILE (YAML or JSON, serve-config.schema.json at the repository root) names
the address, the TLS certificate and key (read again when they change on
disk: a rotation needs no restart) or plainHTTP: true for local use, the
trust policy and trust store, how registries are reached, the request
timeout (default 8s, below a webhook's timeoutSeconds) and the verdict
cache. Verdicts are cached by artifact digest, trust policy and trust
store; tags are resolved on every request. Registry credentials come from
the docker config (registry.dockerConfig, else $DOCKER_CONFIG, else
~/.docker/config.json) and its credential helpers.

The policy is read at start: restart to change it. On SIGINT or SIGTERM
the server stops accepting connections and answers the requests in flight
before it exits.

Not yet: Kubernetes admission webhooks, the Gatekeeper external-data
provider, per-namespace policy sets, a shared (Redis) cache, a Helm chart.`,
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
			log := slog.New(slog.NewJSONHandler(e.stderr, nil))
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
