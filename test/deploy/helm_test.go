package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/serve"
)

const chartDir = "deploy/helm/keyward"

// kubeVersion is the Kubernetes version helm template and lint assume
// (there is no cluster to ask): the kube-apiserver keyward's tests run,
// as in scripts/render-manifests.sh.
const kubeVersion = "v1.31.0"

// helm runs the helm CLI built by scripts/tools-helm.sh in the repository
// root; it returns stdout, or stderr as the error text.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin := testenv.Tool(t, "helm")
	cmd := exec.Command(bin, args...)
	cmd.Dir = testenv.RepoRoot(t)
	// No helm configuration, cache or plugins of the user's.
	home := t.TempDir()
	cmd.Env = []string{
		"HOME=" + home,
		"HELM_CACHE_HOME=" + filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME=" + filepath.Join(home, "config"),
		"HELM_DATA_HOME=" + filepath.Join(home, "data"),
		"KUBECONFIG=" + filepath.Join(home, "no-kubeconfig"),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &helmError{args: args, err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type helmError struct {
	args   []string
	err    error
	stderr string
}

func (e *helmError) Error() string {
	return "helm " + strings.Join(e.args, " ") + ": " + e.err.Error() + ": " + e.stderr
}

// render runs helm template with the release name keyward in namespace ns
// and extra arguments, and parses the result strictly.
func render(t *testing.T, ns string, args ...string) *set {
	t.Helper()
	out, err := helm(t, append([]string{"template", "keyward", chartDir, "--namespace", ns, "--kube-version", kubeVersion}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := parseStream("helm template "+strings.Join(args, " "), []byte(out))
	if err != nil {
		t.Fatalf("the chart renders what does not parse strictly: %v", err)
	}
	return &set{objs: objs}
}

func TestHelmLint(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--set", "gatekeeper.enabled=true,gatekeeper.constraint=true,gatekeeper.caBundle=Q0E="},
		{"--set", "tls.certManager=false,tls.existingSecret=my-tls,tls.caBundle=Q0E="},
	} {
		out, err := helm(t, append([]string{"lint", "--strict", "--namespace", namespace, "--kube-version", kubeVersion, chartDir}, args...)...)
		if err != nil {
			t.Errorf("%v\n%s", err, out)
		}
	}
}

// TestHelmDefaultIsManifests checks that deploy/manifests is the chart's
// default rendering (besides the Namespace, which Helm users get from
// --create-namespace), and deploy/gatekeeper its Gatekeeper objects:
// scripts/render-manifests.sh writes them; this catches a chart or a
// manifest edited alone.
func TestHelmDefaultIsManifests(t *testing.T) {
	plain := loadManifests(t)
	var want []*object
	for _, o := range plain.objs {
		if o.kind != "Namespace" {
			want = append(want, o)
		}
	}
	got := render(t, namespace)
	compareSets(t, "deploy/manifests", want, got.objs)

	gk := render(t, namespace, "--set", "gatekeeper.enabled=true,gatekeeper.constraint=true,gatekeeper.caBundle=REPLACE-WITH-BASE64-CA-BUNDLE",
		"--show-only", "templates/gatekeeper-provider.yaml", "--show-only", "templates/gatekeeper-template.yaml",
		"--show-only", "templates/gatekeeper-constraint.yaml")
	compareSets(t, "deploy/gatekeeper", loadDir(t, gatekeeperDir), gk.objs)
}

// compareSets reports objects in one set and not the other, and objects
// whose JSON differs.
func compareSets(t *testing.T, what string, want, got []*object) {
	t.Helper()
	index := func(objs []*object) map[string]any {
		m := map[string]any{}
		for _, o := range objs {
			var v any
			if err := json.Unmarshal(o.json, &v); err != nil {
				t.Fatal(err)
			}
			m[o.key()] = v
		}
		return m
	}
	w, g := index(want), index(got)
	var keys []string
	for k := range w {
		keys = append(keys, k)
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		wv, inW := w[k]
		gv, inG := g[k]
		switch {
		case !inW:
			t.Errorf("%s: the chart renders %s, which is not in %s (run scripts/render-manifests.sh)", what, k, what)
		case !inG:
			t.Errorf("%s: %s is not rendered by the chart's defaults (run scripts/render-manifests.sh)", what, k)
		case !reflect.DeepEqual(wv, gv):
			wj, _ := json.MarshalIndent(wv, "", "  ")
			gj, _ := json.MarshalIndent(gv, "", "  ")
			t.Errorf("%s: %s differs from the chart's rendering (run scripts/render-manifests.sh)\n--- %s:\n%s\n--- chart:\n%s", what, k, what, wj, gj)
		}
	}
}

// TestHelmValues renders the chart with non-default values and checks the
// installation's invariants hold and the values took effect.
func TestHelmValues(t *testing.T) {
	t.Run("other release and namespace", func(t *testing.T) {
		out, err := helm(t, "template", "prod", chartDir, "--namespace", "security", "--kube-version", kubeVersion)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := parseStream("prod", []byte(out))
		if err != nil {
			t.Fatal(err)
		}
		s := &set{objs: objs}
		if _, problems := checkInstall(s, "security"); len(problems) > 0 {
			t.Fatalf("release prod in namespace security:%s", joinProblems(problems))
		}
		if find[appsv1.Deployment](s, "Deployment", "security", "prod-keyward") == nil {
			t.Errorf("no Deployment security/prod-keyward")
		}
	})

	t.Run("certificates by hand", func(t *testing.T) {
		s := render(t, namespace, "--set", "tls.certManager=false,tls.existingSecret=my-tls,tls.caBundle=Q0E=")
		if _, problems := checkInstall(s, namespace); len(problems) > 0 {
			t.Fatalf("%s", joinProblems(problems))
		}
		if n := len(s.all("Certificate")) + len(s.all("Issuer")); n != 0 {
			t.Errorf("tls.certManager=false still renders %d cert-manager objects", n)
		}
		for _, o := range s.all("ValidatingWebhookConfiguration") {
			v := o.typed.(*admissionregistrationv1.ValidatingWebhookConfiguration)
			if string(v.Webhooks[0].ClientConfig.CABundle) != "CA" || v.Annotations["cert-manager.io/inject-ca-from"] != "" {
				t.Errorf("validating webhook: caBundle %q, annotations %v", v.Webhooks[0].ClientConfig.CABundle, v.Annotations)
			}
		}
		d := s.all("Deployment")[0].typed.(*appsv1.Deployment)
		if !hasSecretVolume(d, "my-tls") {
			t.Errorf("the Deployment does not mount Secret my-tls")
		}
	})

	t.Run("policy sets, redis, registry credentials", func(t *testing.T) {
		s := render(t, namespace,
			"--set", "policySets[0].name=team-a,policySets[0].namespaces[0]=team-a",
			"--set-json", `policySets[0].trustPolicy={"version":"1.0","trustPolicies":[]}`,
			"--set", "policySets[0].trustStore.existingSecret=team-a-store,policySets[0].trustStore.items[0].key=root.crt,policySets[0].trustStore.items[0].path=x509/ca/team-a/root.crt",
			"--set", "redis.address=redis.keyward:6379,redis.existingSecret=redis-auth",
			"--set", "registry.dockerConfigSecret=regcred,rbac.pullSecretNamespaces={team-a,team-b}",
			"--set", "registry.credentials[0].registry=registry.example.com,registry.credentials[0].username=reader,registry.credentials[0].existingSecret=reg-pw")
		in, problems := checkInstall(s, namespace)
		if len(problems) > 0 {
			t.Fatalf("%s", joinProblems(problems))
		}
		for _, want := range []string{
			"name: team-a", "namespaces: [\"team-a\"]",
			"trustPolicy: /etc/keyward/policies/team-a/current/trustpolicy.json",
			"trustStore: /etc/keyward/policies/team-a/current/truststore",
			`address: "redis.keyward:6379"`, "passwordFile: /etc/keyward/redis/password",
			"dockerConfig: /etc/keyward/docker",
			`- registry: "registry.example.com"`, `username: "reader"`, "passwordFile: /etc/keyward/registry/0/password",
		} {
			if !strings.Contains(in.configYAML, want) {
				t.Errorf("serve.yaml lacks %q:\n%s", want, in.configYAML)
			}
		}
		for mount, want := range map[string]string{
			"/etc/keyward/redis":      "redis-auth",
			"/etc/keyward/docker":     "regcred",
			"/etc/keyward/registry/0": "reg-pw",
		} {
			if v := in.mounts[mount]; v == nil || v.Secret == nil || v.Secret.SecretName != want {
				t.Errorf("%s is not Secret %s: %+v", mount, want, v)
			}
		}
		// The team-a set: its policy from the chart's ConfigMap, its trust
		// store from the existing Secret, in one projected volume.
		v := in.mounts["/etc/keyward/policies/team-a"]
		if v == nil || v.Projected == nil || len(v.Projected.Sources) != 2 {
			t.Fatalf("/etc/keyward/policies/team-a is not a projected volume of two sources: %+v", v)
		}
		pol, store := v.Projected.Sources[0].ConfigMap, v.Projected.Sources[1].Secret
		if pol == nil || find[corev1.ConfigMap](s, "ConfigMap", namespace, pol.Name) == nil ||
			len(pol.Items) != 1 || pol.Items[0].Path != "current/trustpolicy.json" {
			t.Errorf("the team-a policy is not the chart's ConfigMap at current/trustpolicy.json: %+v", pol)
		}
		if store == nil || store.Name != "team-a-store" || len(store.Items) != 1 ||
			store.Items[0] != (corev1.KeyToPath{Key: "root.crt", Path: "current/truststore/x509/ca/team-a/root.crt"}) {
			t.Errorf("the team-a trust store is not Secret team-a-store under current/truststore: %+v", store)
		}
		roles := map[string]bool{}
		for _, o := range s.all("Role") {
			roles[o.ns] = true
		}
		if !roles["team-a"] || !roles["team-b"] || roles["default"] || len(roles) != 2 {
			t.Errorf("Roles for secrets in %v, want team-a and team-b", roles)
		}
		// The Redis password is a file, never an environment variable.
		for _, e := range in.container.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				t.Errorf("env %s comes from a Secret", e.Name)
			}
		}
	})

	t.Run("network policy", func(t *testing.T) {
		s := render(t, namespace, "--set", "networkPolicy.enabled=true")
		if _, problems := checkInstall(s, namespace); len(problems) > 0 {
			t.Fatalf("%s", joinProblems(problems))
		}
		objs := s.all("NetworkPolicy")
		if len(objs) != 1 {
			t.Fatalf("%d NetworkPolicies, want 1", len(objs))
		}
		np := objs[0].typed.(*networkingv1.NetworkPolicy)
		d := s.all("Deployment")[0].typed.(*appsv1.Deployment)
		if !selects(&np.Spec.PodSelector, d.Spec.Template.Labels) {
			t.Errorf("the NetworkPolicy does not select keyward's pods")
		}
		if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].Ports) != 1 || np.Spec.Ingress[0].Ports[0].Port.String() != "https" || len(np.Spec.Ingress[0].From) != 0 {
			t.Errorf("ingress %+v, want the https port from anywhere (the API server's address is not known)", np.Spec.Ingress)
		}
	})

	t.Run("validating only", func(t *testing.T) {
		s := render(t, namespace, "--set", "webhooks.mutating=false")
		if n := len(s.all("MutatingWebhookConfiguration")); n != 0 {
			t.Errorf("webhooks.mutating=false renders %d MutatingWebhookConfigurations", n)
		}
		cm := find[corev1.ConfigMap](s, "ConfigMap", namespace, "keyward-config")
		if cm == nil || !strings.Contains(cm.Data["serve.yaml"], "mutating: false") {
			t.Errorf("serve.yaml does not say mutating: false")
		}
	})

	for name, c := range map[string]struct {
		set, want string
	}{
		"trust store certificate of bad type": {`policy.trustStore.certificates=[{"type":"x509","store":"a","file":"b","pem":"c"}]`, `type "x509" is not ca`},
		"no caBundle without cert-manager":    {"tls.certManager=false,tls.existingSecret=my-tls", "tls.caBundle is required"},
		"no Secret without cert-manager":      {"tls.certManager=false,tls.caBundle=Q0E=", "tls.existingSecret is required"},
		"timeoutSeconds above 30":             {"webhooks.timeoutSeconds=31", "/webhooks/timeoutSeconds': maximum"},
		"gatekeeper without a CA":             {"gatekeeper.enabled=true", "gatekeeper.caBundle is required"},
		"existing trust store without items":  {"policy.trustStore.existingConfigMap=store,policy.trustStore.certificates=null", "items is required"},
		"misspelt value":                      {"webhook.mutating=false", "additional properties 'webhook' not allowed"},
		"failurePolicy is not a value":        {"webhooks.failurePolicy=Ignore", "additional properties 'failurePolicy' not allowed"},
		"policy set named default":            {"policySets[0].name=default,policySets[0].trustStore.existingConfigMap=x,policySets[0].trustStore.items[0].key=k,policySets[0].trustStore.items[0].path=x509/ca/a/k", "reserved"},
	} {
		t.Run(name, func(t *testing.T) {
			flag := "--set"
			if strings.Contains(c.set, "=[") {
				flag = "--set-json"
			}
			_, err := helm(t, "template", "keyward", chartDir, "--namespace", namespace, "--kube-version", kubeVersion, flag, c.set)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("helm template --set %s: error %v, want one saying %q", c.set, err, c.want)
			}
		})
	}
}

func hasSecretVolume(d *appsv1.Deployment, name string) bool {
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
	}
	return false
}

// TestHelmServeConfigParses validates serve.yaml as the chart writes it
// with every optional part on (policy sets, Redis, registry credentials,
// plain-HTTP registries, the Gatekeeper endpoint, text logs) with
// serve.ParseConfig.
func TestHelmServeConfigParses(t *testing.T) {
	s := render(t, namespace,
		"--set", "policySets[0].name=team-a,policySets[0].namespaces={team-a,team-a-dev}",
		"--set", "policySets[1].name=pci,policySets[1].namespaceSelector.matchLabels.compliance=pci",
		"--set-json", `policySets[1].namespaceSelector.matchExpressions=[{"key":"tier","operator":"In","values":["prod"]}]`,
		"--set-json", `policySets[0].trustPolicy={"version":"1.0","trustPolicies":[]}`,
		"--set-json", `policySets[1].trustPolicy={"version":"1.0","trustPolicies":[]}`,
		"--set", "policySets[0].trustStore.existingConfigMap=a,policySets[0].trustStore.items[0].key=k,policySets[0].trustStore.items[0].path=x509/ca/a/k.crt",
		"--set", "policySets[1].trustStore.existingConfigMap=b,policySets[1].trustStore.items[0].key=k,policySets[1].trustStore.items[0].path=x509/ca/b/k.crt",
		"--set", "redis.address=redis.keyward:6379,redis.existingSecret=redis-auth,redis.keyPrefix=prod:,redis.db=2",
		"--set", "registry.dockerConfigSecret=regcred,registry.plainHTTPHosts={registry.local:5000}",
		"--set", "registry.credentials[0].registry=registry.example.com,registry.credentials[0].username=reader,registry.credentials[0].existingSecret=reg-pw",
		"--set", "gatekeeper.enabled=true,gatekeeper.caBundle=Q0E=,log.format=text,log.level=debug,webhooks.mutating=false")
	in, problems := checkInstall(s, namespace)
	if in.configYAML == "" {
		t.Fatalf("no serve.yaml:%s", joinProblems(problems))
	}
	if _, err := serve.ParseConfig(configPath, []byte(in.configYAML)); err != nil {
		// The password files are Secret volumes of the pod, not on this
		// machine: their absence is the only problem allowed.
		var ce *serve.ConfigError
		if !errors.As(err, &ce) {
			t.Fatalf("serve.yaml as the chart writes it does not load:\n%v\n%s", err, in.configYAML)
		}
		for _, p := range ce.Problems {
			if strings.HasSuffix(p.Pointer, "/passwordFile") && strings.Contains(p.Message, " /etc/keyward/") && strings.Contains(p.Message, "does not exist") {
				continue
			}
			t.Errorf("serve.yaml as the chart writes it: %s", p.String(configPath))
		}
		if t.Failed() {
			t.Logf("serve.yaml:\n%s", in.configYAML)
		}
	}
}
