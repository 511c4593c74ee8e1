package deploy

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/serve"
	"github.com/keyward/keyward/truststore"
)

const (
	manifestsDir  = "deploy/manifests"
	gatekeeperDir = "deploy/gatekeeper"
	namespace     = "keyward"
)

func loadManifests(t *testing.T) *set {
	t.Helper()
	return &set{objs: loadDir(t, manifestsDir)}
}

// TestManifests parses every document of deploy/manifests strictly into
// the k8s.io/api v0.31.0 types and checks the invariants of issue 12
// point 9.
func TestManifests(t *testing.T) {
	s := loadManifests(t)
	if _, problems := checkInstall(s, namespace); len(problems) > 0 {
		t.Fatalf("deploy/manifests:%s", joinProblems(problems))
	}
	ns := find[corev1.Namespace](s, "Namespace", "", namespace)
	if ns == nil {
		t.Fatalf("deploy/manifests has no Namespace %s", namespace)
	}
	for _, o := range s.objs {
		if o.kind == "Namespace" || strings.HasPrefix(o.kind, "Cluster") || strings.HasSuffix(o.kind, "WebhookConfiguration") {
			if o.ns != "" {
				t.Errorf("%s is cluster-scoped but has namespace %q", o.key(), o.ns)
			}
			continue
		}
		if o.ns == "" {
			t.Errorf("%s (%s) has no namespace: kubectl apply would put it in the current one", o.key(), o.source)
		}
	}
	// kubectl apply -f applies the files in name order: the Namespace must
	// come first, the webhooks after the Deployment.
	if first := s.objs[0]; first.kind != "Namespace" {
		t.Errorf("the first object is %s (%s), want the Namespace", first.key(), first.source)
	}
	order := map[string]int{}
	for i, o := range s.objs {
		order[o.kind] = i
	}
	if order["ValidatingWebhookConfiguration"] < order["Deployment"] || order["MutatingWebhookConfiguration"] < order["Deployment"] {
		t.Errorf("the webhook configurations come before the Deployment in deploy/manifests")
	}
}

// TestServeConfigParses validates serve.yaml of the manifests, and of the
// chart rendered with every optional part on, with serve.ParseConfig: the
// keys the chart writes are the keys keyward serve reads.
func TestServeConfigParses(t *testing.T) {
	s := loadManifests(t)
	in, problems := checkInstall(s, namespace)
	if len(problems) > 0 {
		t.Fatalf("deploy/manifests:%s", joinProblems(problems))
	}
	cfg, err := serve.ParseConfig(configPath, []byte(in.configYAML))
	if err != nil {
		t.Fatalf("serve.yaml of deploy/manifests does not load:\n%v\n%s", err, in.configYAML)
	}
	if cfg.RequestTimeout != in.config.RequestTimeout || cfg.TLS == nil || *cfg.TLS != *in.config.TLS || cfg.Policy != in.config.Policy {
		t.Errorf("serve.ParseConfig reads %+v, the checks read %+v", cfg, in.config)
	}
}

// TestGatekeeperManifests checks deploy/gatekeeper against the
// installation in deploy/manifests.
func TestGatekeeperManifests(t *testing.T) {
	s := loadManifests(t)
	in, problems := checkInstall(s, namespace)
	if len(problems) > 0 {
		t.Fatalf("deploy/manifests:%s", joinProblems(problems))
	}
	g := &set{objs: loadDir(t, gatekeeperDir)}
	if problems := checkGatekeeper(g, in, namespace); len(problems) > 0 {
		t.Fatalf("deploy/gatekeeper:%s", joinProblems(problems))
	}
}

// TestInvariantsCatchBreakage breaks a copy of the manifests in the ways
// the invariants exist for, and checks that each is reported: the checks
// above can fail.
func TestInvariantsCatchBreakage(t *testing.T) {
	base := loadManifests(t)
	cases := []struct {
		name   string
		mutate func(s *set)
		want   string
	}{
		{"one replica", func(s *set) {
			var one int32 = 1
			s.all("Deployment")[0].typed.(*appsv1.Deployment).Spec.Replicas = &one
		}, "replicas"},
		{"failurePolicy Ignore", func(s *set) {
			ignore := admissionregistrationv1.Ignore
			s.all("ValidatingWebhookConfiguration")[0].typed.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks[0].FailurePolicy = &ignore
		}, "failurePolicy must be Fail"},
		{"kube-system checked", func(s *set) {
			w := &s.all("MutatingWebhookConfiguration")[0].typed.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks[0]
			w.NamespaceSelector.MatchExpressions[0].Values = []string{namespace}
		}, "namespace kube-system is not excluded"},
		{"wrong path", func(s *set) {
			w := &s.all("ValidatingWebhookConfiguration")[0].typed.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks[0]
			p := "/validate"
			w.ClientConfig.Service.Path = &p
		}, "want " + validatePath},
		{"no cronjobs", func(s *set) {
			w := &s.all("ValidatingWebhookConfiguration")[0].typed.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks[0]
			for i := range w.Rules {
				w.Rules[i].Resources = removeString(w.Rules[i].Resources, "cronjobs")
			}
		}, "cronjobs"},
		{"writable root", func(s *set) {
			f := false
			s.all("Deployment")[0].typed.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = &f
		}, "readOnlyRootFilesystem"},
		{"root user", func(s *set) {
			var root int64
			s.all("Deployment")[0].typed.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].SecurityContext.RunAsUser = &root
		}, "runAsUser"},
		{"no readiness probe", func(s *set) {
			s.all("Deployment")[0].typed.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].ReadinessProbe = nil
		}, "readiness probe"},
		{"no memory limit", func(s *set) {
			delete(s.all("Deployment")[0].typed.(*appsv1.Deployment).Spec.Template.Spec.Containers[0].Resources.Limits, corev1.ResourceMemory)
		}, "resources: memory"},
		{"cluster-wide secrets", func(s *set) {
			cr := s.all("ClusterRole")[0].typed.(*rbacv1.ClusterRole)
			cr.Rules = append(cr.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
		}, "grants secrets"},
		{"timeout too short", func(s *set) {
			var five int32 = 5
			s.all("MutatingWebhookConfiguration")[0].typed.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks[0].TimeoutSeconds = &five
		}, "is not below timeoutSeconds"},
		{"no PDB", func(s *set) {
			var kept []*object
			for _, o := range s.objs {
				if o.kind != "PodDisruptionBudget" {
					kept = append(kept, o)
				}
			}
			s.objs = kept
		}, "PodDisruptionBudget"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base.clone(t)
			c.mutate(s)
			_, problems := checkInstall(s, namespace)
			if !strings.Contains(strings.Join(problems, "\n"), c.want) {
				t.Fatalf("breaking %s was not reported with %q; problems:%s", c.name, c.want, joinProblems(problems))
			}
		})
	}
}

func removeString(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// TestStrictParseRejects checks that the strict parse refuses what kubectl
// would silently drop or the API server refuse.
func TestStrictParseRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndataa: {}\n",
		"duplicate key":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\ndata: {}\n",
		"wrong type":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n",
		"unknown kind":   "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"no name":        "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
		"CRD misspelled": "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\nspec: {secretName: s, dnsName: [a], issuerRef: {name: i}}\n",
	} {
		if _, err := parseStream(name, []byte(doc)); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

// materialize writes the files a projected volume of ConfigMaps of the
// manifests shows at dir, laid out as kubelet's atomic writer does: the
// files in a timestamped folder, ..data a symlink to it, and each
// top-level entry a symlink into ..data.
func materialize(t *testing.T, s *set, v *corev1.Volume, dir string) {
	t.Helper()
	if v.Projected == nil {
		t.Fatalf("volume %s is not a projected volume", v.Name)
	}
	const ts = "..2026_12_06_05_00_00.000000001"
	top := map[string]bool{}
	for _, src := range v.Projected.Sources {
		if src.ConfigMap == nil {
			t.Fatalf("volume %s: a source is not a ConfigMap", v.Name)
		}
		cm := find[corev1.ConfigMap](s, "ConfigMap", namespace, src.ConfigMap.Name)
		if cm == nil {
			t.Fatalf("volume %s: ConfigMap %s is not in the manifests", v.Name, src.ConfigMap.Name)
		}
		if len(src.ConfigMap.Items) == 0 {
			t.Fatalf("volume %s: ConfigMap %s has no items", v.Name, cm.Name)
		}
		for _, it := range src.ConfigMap.Items {
			content, ok := cm.Data[it.Key]
			if !ok {
				t.Fatalf("volume %s: item key %s is not in ConfigMap %s", v.Name, it.Key, cm.Name)
			}
			p := filepath.Join(dir, ts, filepath.FromSlash(it.Path))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			first, _, _ := strings.Cut(it.Path, "/")
			top[first] = true
		}
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for first := range top {
		if err := os.Symlink(filepath.Join("..data", first), filepath.Join(dir, first)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDefaultPolicyLoads checks that the trust policy and trust store the
// manifests ship load in keyward, from the files kubelet makes of their
// volume (symlinks included): the policy parses, lint finds no error
// (the audit level on "*" is a warning, on purpose), and keyward serve starts with them and serves every route the
// manifests call (webhooks, Gatekeeper, probes).
func TestDefaultPolicyLoads(t *testing.T) {
	s := loadManifests(t)
	in, problems := checkInstall(s, namespace)
	if len(problems) > 0 {
		t.Fatalf("deploy/manifests:%s", joinProblems(problems))
	}
	// The volume as kubelet writes it, at the path the configuration names.
	root := t.TempDir()
	mp, v := in.mountOf(in.config.Policy.TrustPolicy)
	if v == nil {
		t.Fatalf("policy.trustPolicy %s is in no volume", in.config.Policy.TrustPolicy)
	}
	materialize(t, s, v, filepath.Join(root, filepath.FromSlash(mp)))
	policyFile := filepath.Join(root, filepath.FromSlash(in.config.Policy.TrustPolicy))
	storeDir := filepath.Join(root, filepath.FromSlash(in.config.Policy.TrustStore))
	data, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := policy.Parse(data, policyFile, policy.TypeOCI)
	if err != nil {
		t.Fatalf("the shipped trust policy does not parse: %v", err)
	}
	for _, f := range policy.Lint(doc, policy.LintOptions{TrustStore: truststore.New(storeDir)}) {
		if f.Severity == policy.SeverityError {
			t.Errorf("keyward policy lint finds an error in the shipped policy: %s", f.Message)
		}
	}

	cfg, err := serve.ParseConfig(filepath.Join(root, "serve.yaml"), []byte(
		"listen: 127.0.0.1:0\nplainHTTP: true\npolicy:\n  trustPolicy: "+policyFile+"\n  trustStore: "+storeDir+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := serve.New(cfg, serve.Options{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("keyward serve does not start with the shipped policy: %v", err)
	}
	h := srv.Handler()
	for _, r := range []struct{ method, path string }{
		{"GET", "/healthz"}, {"GET", "/readyz"},
		{"POST", validatePath}, {"POST", mutatePath}, {"POST", gatekeeperPath}, {"POST", "/v1/verify"},
	} {
		req := httptest.NewRequest(r.method, r.path, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusNotFound || rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("%s %s: status %d: keyward serve does not serve a route the manifests use", r.method, r.path, rec.Code)
		}
	}
}
