package serve

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaultsAndPaths(t *testing.T) {
	p := writeConfig(t, `
listen: 127.0.0.1:8443
tls: {certFile: tls.crt, keyFile: /abs/tls.key}
policy:
  trustPolicy: trustpolicy.json
  trustStore: truststore
registry:
  plainHTTPHosts: [127.0.0.1:5000]
cache:
  failureTTL: 0s
`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if cfg.TLS.CertFile != filepath.Join(dir, "tls.crt") || cfg.TLS.KeyFile != "/abs/tls.key" {
		t.Errorf("tls paths = %+v", cfg.TLS)
	}
	if cfg.Policy.TrustPolicy != filepath.Join(dir, "trustpolicy.json") {
		t.Errorf("trustPolicy = %s", cfg.Policy.TrustPolicy)
	}
	if cfg.RequestTimeout != 8*time.Second || cfg.Cache.TTL != DefaultTTL || cfg.Cache.FailureTTL != 0 || cfg.Cache.MaxEntries != DefaultMaxEntries {
		t.Errorf("defaults = %+v", cfg)
	}
	if len(cfg.Registry.PlainHTTPHosts) != 1 {
		t.Errorf("plainHTTPHosts = %v", cfg.Registry.PlainHTTPHosts)
	}
}

func TestLoadConfigJSON(t *testing.T) {
	p := writeConfig(t, `{"listen": ":8080", "plainHTTP": true,
 "policy": {"trustPolicy": "/p.json", "trustStore": "/ts"}, "timeouts": {"request": "2s"}}`)
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.PlainHTTP || cfg.TLS != nil || cfg.RequestTimeout != 2*time.Second {
		t.Errorf("cfg = %+v", cfg)
	}
}

// TestLoadConfigErrors checks that each problem names the file, the JSON
// pointer, the line and column of the value, and a fix.
func TestLoadConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // one substring per problem, in order
	}{
		{"unknown field", "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\nlisen: x\n",
			[]string{`:4:1: /lisen: unknown field "lisen": remove it or correct its spelling`}},
		{"bad duration", "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\ntimeouts:\n  request: 8 seconds\n",
			[]string{`:5:12: /timeouts/request: "8 seconds" is not a duration: write a Go duration such as 8s`}},
		{"wrong type", "{\n  \"listen\": 8443,\n  \"plainHTTP\": true,\n  \"policy\": {\"trustPolicy\": \"a\", \"trustStore\": \"b\"}\n}\n",
			[]string{`:2:13: /listen: expected string, but got number`}},
		{"missing policy", "listen: :1\nplainHTTP: true\n",
			[]string{`:1:1: (document): missing properties: 'policy': add the missing field`}},
		{"no tls", "listen: :1\npolicy: {trustPolicy: a, trustStore: b}\n",
			[]string{`(document): neither tls nor plainHTTP: true is set: give tls`}},
		{"both", "listen: :1\nplainHTTP: true\ntls: {certFile: a, keyFile: b}\npolicy: {trustPolicy: a, trustStore: b}\n",
			[]string{`:2:12: /plainHTTP: plainHTTP: true and tls are both set: remove one`}},
		{"timeout too long", "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\ntimeouts: {request: 30s}\n",
			[]string{`:4:21: /timeouts/request: 30s is not below 30s`}},
		{"syntax", "listen: [\n", []string{`serve.yaml:1: (document): did not find expected node content: write YAML or JSON`}},
		{"policySets not yet", "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\npolicySets: {}\n",
			[]string{`:4:1: /policySets: unknown field`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.text)
			_, err := LoadConfig(p)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			if ce.File != p || len(ce.Problems) != len(tc.want) {
				t.Fatalf("file %s, problems %v; want %d problems", ce.File, ce.Problems, len(tc.want))
			}
			msg := err.Error()
			for i, w := range tc.want {
				if s := ce.Problems[i].String(p); !strings.Contains(s, w) || !strings.HasPrefix(s, p) {
					t.Errorf("problem %d = %q, want it to contain %q", i, s, w)
				}
			}
			if !strings.HasPrefix(msg, p+": invalid keyward serve configuration") {
				t.Errorf("message = %q", msg)
			}
		})
	}
}

// TestReadmeConfig checks that the configuration shown in README.md is
// valid, and that the embedded schema is the repository's file.
func TestReadmeConfig(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "# serve.yaml")
	if !ok {
		t.Fatal("README.md has no serve.yaml example")
	}
	_, rest, _ = strings.Cut(rest, "\n") // the rest of the comment line
	block, _, _ := strings.Cut(rest, "```")
	if _, err := LoadConfig(writeConfig(t, block)); err != nil {
		t.Errorf("the README example: %v", err)
	}
	root, err := os.ReadFile("../serve-config.schema.json")
	if err != nil || !bytes.Equal(root, keyward.ServeConfigSchema()) {
		t.Errorf("embedded schema differs from the repository's file: %v", err)
	}
}

// TestLoadConfigEndpoints checks webhooks.* and gatekeeper.enabled: every
// endpoint by default, each switched off on its own, and refused values.
func TestLoadConfigEndpoints(t *testing.T) {
	const head = "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\n"
	for text, want := range map[string]Config{
		head: {},
		head + "webhooks: {validating: true, mutating: true}\ngatekeeper: {enabled: true}\n": {},
		head + "webhooks: {validating: false}\n":                                             {Webhooks: WebhooksConfig{DisableValidating: true}},
		head + "webhooks: {mutating: false}\ngatekeeper: {enabled: false}\n":                 {Webhooks: WebhooksConfig{DisableMutating: true}, Gatekeeper: GatekeeperConfig{Disable: true}},
	} {
		cfg, err := LoadConfig(writeConfig(t, text))
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if cfg.Webhooks != want.Webhooks || cfg.Gatekeeper != want.Gatekeeper {
			t.Errorf("%s: webhooks %+v gatekeeper %+v", text, cfg.Webhooks, cfg.Gatekeeper)
		}
	}
	for text, want := range map[string]string{
		head + "webhooks: {validating: yes please}\n": `:4:24: /webhooks/validating: expected boolean, but got string`,
		head + "webhooks: {validate: false}\n":        `:4:12: /webhooks/validate: unknown field "validate"`,
		head + "gatekeeper: {enable: true}\n":         `:4:14: /gatekeeper/enable: unknown field "enable"`,
		head + "gatekeeper: true\n":                   `:4:13: /gatekeeper: expected object, but got boolean`,
	} {
		_, err := LoadConfig(writeConfig(t, text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", text, err, want)
		}
	}
}
