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
default trust policy and trust store (policy), per-namespace policy sets
(policySets), how registries are reached and with which credentials, the
Kubernetes API, the request timeout (default 8s, below a webhook's
timeoutSeconds) and the verdict cache. Verdicts are cached by artifact
digest and the trust policy and trust store digests of the policy set that
judged them; tags are resolved on every request.

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

Not yet: Kubernetes admission webhooks, the Gatekeeper external-data
provider, a shared (Redis) cache, a Helm chart.`,
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
