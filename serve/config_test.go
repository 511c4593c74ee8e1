package serve

import (
	"bytes"
	"encoding/json"
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
		{"policySets not an array", "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\npolicySets: {}\n",
			[]string{`:4:13: /policySets: expected array, but got object`}},
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

// base is a valid configuration's start, for policy set cases.
const base = "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\n"

func TestLoadConfigPolicySets(t *testing.T) {
	p := writeConfig(t, base+`policySets:
- name: team-a
  namespaces: [team-a, team-a-dev]
  trustPolicy: a/trustpolicy.json
  trustStore: /abs/a-store
- name: prod
  namespaceSelector:
    matchLabels: {keyward.dev/tier: prod}
    matchExpressions:
    - {key: team, operator: In, values: [b, c]}
    - {key: legacy, operator: DoesNotExist}
  trustPolicy: prod.json
  trustStore: prod-store
reload: {interval: 2s}
kubernetes: {kubeconfig: kube.yaml, pullSecrets: true}
registry:
  credentials:
  - {registry: "registry.example:5000", username: robot, passwordFile: pw}
`)
	dir := filepath.Dir(p)
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != p {
		t.Errorf("File = %q, want %q", cfg.File, p)
	}
	if len(cfg.PolicySets) != 2 {
		t.Fatalf("policySets = %+v", cfg.PolicySets)
	}
	a, prod := cfg.PolicySets[0], cfg.PolicySets[1]
	if a.Name != "team-a" || len(a.Namespaces) != 2 || a.TrustPolicy != filepath.Join(dir, "a/trustpolicy.json") || a.TrustStore != "/abs/a-store" || a.NamespaceSelector != nil {
		t.Errorf("team-a = %+v", a)
	}
	if prod.NamespaceSelector == nil || prod.NamespaceSelector.MatchLabels["keyward.dev/tier"] != "prod" || len(prod.NamespaceSelector.MatchExpressions) != 2 {
		t.Fatalf("prod selector = %+v", prod.NamespaceSelector)
	}
	sel, err := prod.NamespaceSelector.Selector()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"keyward.dev/tier": "prod", "team": "b"}, true},
		{map[string]string{"keyward.dev/tier": "prod", "team": "c", "other": "x"}, true},
		{map[string]string{"keyward.dev/tier": "prod", "team": "d"}, false},
		{map[string]string{"keyward.dev/tier": "prod", "team": "b", "legacy": ""}, false},
		{map[string]string{"team": "b"}, false},
	} {
		if got := sel.Matches(labelSet(tc.labels)); got != tc.want {
			t.Errorf("selector on %v = %v, want %v", tc.labels, got, tc.want)
		}
	}
	if cfg.Reload.Interval != 2*time.Second {
		t.Errorf("reload.interval = %s", cfg.Reload.Interval)
	}
	if cfg.Kubernetes.Kubeconfig != filepath.Join(dir, "kube.yaml") || !cfg.Kubernetes.PullSecrets {
		t.Errorf("kubernetes = %+v", cfg.Kubernetes)
	}
	if c := cfg.Registry.Credentials; len(c) != 1 || c[0].Registry != "registry.example:5000" || c[0].Username != "robot" || c[0].PasswordFile != filepath.Join(dir, "pw") {
		t.Errorf("credentials = %+v", c)
	}
	// The password is not in the configuration: it is read when used.
	if b, _ := json.Marshal(cfg); bytes.Contains(b, []byte("s3cret")) {
		t.Error("the password is in the Config")
	}

	// Defaults.
	cfg, err = LoadConfig(writeConfig(t, base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Reload.Interval != DefaultReloadInterval || cfg.Kubernetes.PullSecrets || cfg.PolicySets != nil {
		t.Errorf("defaults: %+v", cfg)
	}
}

type labelSet map[string]string

func (l labelSet) Has(k string) bool   { _, ok := l[k]; return ok }
func (l labelSet) Get(k string) string { return l[k] }

// TestLoadConfigPolicySetErrors checks the rules of policySets,
// registry.credentials and reload, each problem located.
func TestLoadConfigPolicySetErrors(t *testing.T) {
	set := func(name, rest string) string {
		return "- name: " + name + "\n  trustPolicy: p\n  trustStore: s\n" + rest
	}
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"duplicate names", base + "policySets:\n" + set("a", "  namespaces: [x]\n") + set("a", "  namespaces: [y]\n"),
			[]string{`:9:9: /policySets/1/name: the name "a" is already the name of /policySets/0: give each policy set its own name`}},
		{"default name", base + "policySets:\n" + set("default", "  namespaces: [x]\n"),
			[]string{`:5:9: /policySets/0/name: "default" is the name of the default policy set (policy): give the set another name`}},
		{"no namespace", base + "policySets:\n" + set("a", ""),
			[]string{`:5:3: /policySets/0: policy set "a" names no namespace: give namespaces: [...], a namespaceSelector, or both`}},
		{"bad namespace", base + "policySets:\n" + set("a", "  namespaces: [Team_A]\n"),
			[]string{`:8:16: /policySets/0/namespaces/0: "Team_A" is not a namespace name`}},
		{"namespace in two sets", base + "policySets:\n" + set("a", "  namespaces: [x]\n") + set("b", "  namespaces: [y, x]\n"),
			[]string{`:12:19: /policySets/1/namespaces/1: namespace "x" is already listed by policy set "a", which comes first and wins`}},
		{"In without values", base + "policySets:\n" + set("a", "  namespaceSelector:\n    matchExpressions: [{key: team, operator: In}]\n"),
			[]string{`:9:24: /policySets/0/namespaceSelector/matchExpressions/0: `, `In needs at least one value`}},
		{"Exists with values", base + "policySets:\n" + set("a", "  namespaceSelector:\n    matchExpressions: [{key: team, operator: Exists, values: [x]}]\n"),
			[]string{`/policySets/0/namespaceSelector/matchExpressions/0: `}},
		{"unknown operator", base + "policySets:\n" + set("a", "  namespaceSelector:\n    matchExpressions: [{key: team, operator: Equals}]\n"),
			[]string{`:9:46: /policySets/0/namespaceSelector/matchExpressions/0/operator: value must be one of`}},
		{"bad label key", base + "policySets:\n" + set("a", "  namespaceSelector:\n    matchLabels: {\"bad key\": x}\n"),
			[]string{`:9:30: /policySets/0/namespaceSelector/matchLabels/bad key: `}},
		{"missing password file", base + "registry:\n  credentials:\n  - {registry: r.example, username: u, passwordFile: nothere}\n",
			[]string{`:6:54: /registry/credentials/0/passwordFile: password file `, `nothere does not exist: give a readable regular file`}},
		{"registry with scheme", base + "registry:\n  credentials:\n  - {registry: \"https://r.example\", username: u, passwordFile: /dev/null}\n",
			[]string{`:6:16: /registry/credentials/0/registry: "https://r.example" is not host[:port]`, `/registry/credentials/0/passwordFile: `}},
		{"zero reload interval", base + "reload: {interval: 0s}\n",
			[]string{`:4:20: /reload/interval: "0s" is zero: give a duration greater than 0`}},
		{"unknown kubernetes field", base + "kubernetes: {pullSecret: true}\n",
			[]string{`:4:14: /kubernetes/pullSecret: unknown field`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.text)
			_, err := LoadConfig(p)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *ConfigError", err)
			}
			all := make([]string, len(ce.Problems))
			for i, pr := range ce.Problems {
				all[i] = pr.String(p)
			}
			joined := strings.Join(all, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("problems:\n%s\nwant one containing %q", joined, w)
				}
			}
		})
	}
}

// TestLoadConfigDuplicateRegistry checks that a registry has one
// credential, and that a password file's content is never in an error.
func TestLoadConfigDuplicateRegistry(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("hunter2-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := writeConfig(t, base+"registry:\n  credentials:\n  - {registry: r.example, username: u, passwordFile: "+pw+"}\n  - {registry: r.example, username: v, passwordFile: "+pw+"}\n")
	_, err := LoadConfig(p)
	if err == nil || !strings.Contains(err.Error(), `/registry/credentials/1/registry: registry "r.example" already has a credential at /registry/credentials/0`) {
		t.Errorf("err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "hunter2") {
		t.Error("the password is in the error")
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
