package k8s

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testenv/k8senv"
)

// The registry credential of TestPullSecrets.
const (
	pullUser     = "puller"
	pullPassword = "pull-pa55-k8s-e2e"
)

// TestPullSecrets verifies images in a registry that requires basic
// authentication with the credentials of the pod's imagePullSecrets, which
// keyward serve reads through the Kubernetes API (kubernetes.pullSecrets)
// as a service account bound by the shipped RBAC of deploy/manifests, with
// secrets granted in namespace "granted" only (issue 12: "the pod's
// imagePullSecrets read through the Kubernetes API", "RBAC limited to
// reading secrets in the namespaces it serves"):
//
//   - in granted, a Pod naming a kubernetes.io/dockerconfigjson secret with
//     the right credential is admitted, its tag pinned to the digest; so
//     is one naming a kubernetes.io/dockercfg secret, or missing and
//     Opaque secrets (skipped, as the kubelet skips them) before the right
//     one; one naming a secret keyward cannot parse is denied;
//   - the same Pod without the secret is denied, naming the registry and
//     the fix; with a secret holding a wrong password, denied too;
//   - in "ungranted", where keyward may not read secrets, the same Pod and
//     secret are denied (fail closed), naming the RBAC refusal and the fix;
//     once the shipped Role is bound there too, the Pod is admitted.
//
// The password is in no message and no line keyward serve logs.
func TestPullSecrets(t *testing.T) {
	w := newWorld(t)
	reg := testenv.StartDistributionWithAuth(t, pullUser, pullPassword)
	// notation signs with the credential of its docker config.
	dockerDir := filepath.Join(w.n.Home, ".docker")
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), dockerConfigJSON(reg.Host, pullUser, pullPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	signed, desc := w.pushSigned(t, reg, "team/app", "v1", w.main)

	const group = "pull-secrets"
	cp := w.cp
	granted := cp.Namespace(t, map[string]string{selectorLabel: group})
	ungranted := cp.Namespace(t, map[string]string{selectorLabel: group})
	id := cp.ServiceAccount(t, cp.Namespace(t, nil), "keyward")
	applyShippedRBAC(t, cp, id, granted)

	ctx := context.Background()
	for _, ns := range []string{granted, ungranted} {
		for name, pw := range map[string]string{"regcred": pullPassword, "wrongcred": "not-the-password"} {
			sec := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
				Type:       corev1.SecretTypeDockerConfigJson,
				Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfigJSON(reg.Host, pullUser, pw)},
			}
			if _, err := cp.Clientset.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Secrets the kubelet would skip or read, as the API server stores
	// them (it refuses a dockerconfigjson secret that is not JSON).
	legacy, _ := json.Marshal(map[string]any{reg.Host: map[string]string{"username": pullUser, "password": pullPassword}})
	for _, sec := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "legacy"}, Type: corev1.SecretTypeDockercfg,
			Data: map[string][]byte{corev1.DockerConfigKey: legacy}},
		{ObjectMeta: metav1.ObjectMeta{Name: "opaque"}, Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{"password": []byte(pullPassword)}},
		{ObjectMeta: metav1.ObjectMeta{Name: "broken"}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths": {"` + reg.Host + `": {"auth": "%%% not base64"}}}`)}},
	} {
		if _, err := cp.Clientset.CoreV1().Secrets(granted).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	policy := w.policy(t, "trustpolicy.json", statement{name: "main", scopes: []string{"*"}, level: "strict", stores: []string{"ca:main"}})
	cfg := w.baseConfig(policy, reg.Host)
	cfg["kubernetes"] = map[string]any{"kubeconfig": id.Kubeconfig, "pullSecrets": true}
	k := startKeyward(t, cfg)

	withSecrets := func(p *corev1.Pod, names ...string) *corev1.Pod {
		for _, n := range names {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
		}
		return p
	}
	pinned := signed + "@" + desc.Digest.String()
	k.registerWith(t, cp, group, func(ctx context.Context) error {
		if _, err := cp.DryRunPod(ctx, podOf(granted, "probe-denied", signed)); !apierrors.IsForbidden(err) {
			return fmt.Errorf("dry-run pod of %s without its pull secret: %v, want Forbidden", signed, err)
		}
		p, err := cp.DryRunPod(ctx, withSecrets(podOf(granted, "probe-pinned", signed), "regcred"))
		if err != nil {
			return fmt.Errorf("dry-run pod of %s with its pull secret: %v", signed, err)
		}
		if got := p.Spec.Containers[0].Image; got != pinned {
			return fmt.Errorf("dry-run pod of %s: image %q, want %q", signed, got, pinned)
		}
		return nil
	})

	create := func(p *corev1.Pod) error {
		_, err := cp.Clientset.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
		return err
	}
	var messages []string
	deniedWith := func(what string, err error, want ...string) {
		t.Helper()
		denied(t, err, signed, "app", want[0])
		if err == nil {
			return
		}
		messages = append(messages, err.Error())
		for _, s := range want[1:] {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: the message does not say %q: %s", what, s, err)
			}
		}
	}

	// Granted: the secret's credential opens the registry.
	if err := create(withSecrets(podOf(granted, "with-secret", signed), "regcred")); err != nil {
		t.Errorf("with its pull secret: %v", err)
	} else if p, err := cp.Clientset.CoreV1().Pods(granted).Get(ctx, "with-secret", metav1.GetOptions{}); err != nil {
		t.Fatal(err)
	} else if got := p.Spec.Containers[0].Image; got != pinned {
		t.Errorf("with its pull secret: stored image %q, want %q", got, pinned)
	}
	// Secrets that do not exist or hold no registry credential are
	// skipped, as the kubelet skips them; a .dockercfg secret is read as
	// the kubelet reads it.
	if err := create(withSecrets(podOf(granted, "skipped-secrets", signed), "missing", "opaque", "regcred")); err != nil {
		t.Errorf("with a missing and an Opaque secret before its pull secret: %v", err)
	}
	if err := create(withSecrets(podOf(granted, "legacy-secret", signed), "legacy")); err != nil {
		t.Errorf("with a kubernetes.io/dockercfg pull secret: %v", err)
	}
	// A pull secret keyward cannot parse fails closed, even with a good
	// one after it.
	deniedWith("a malformed pull secret", create(withSecrets(podOf(granted, "broken-secret", signed), "broken", "regcred")),
		"image pull secret "+granted+"/broken", "fix the secret")
	// Without it: the registry and keyward serve's ways to give it a
	// credential.
	// The whole fix: the message of each image is clipped (480
	// characters), and a fix past the clip is lost.
	serveFix := "give the pod an imagePullSecret for the registry, with kubernetes.pullSecrets: true, or add the registry to registry.credentials or to the docker config of registry.dockerConfig"
	deniedWith("without the pull secret", create(podOf(granted, "without-secret", signed)),
		"registry "+reg.Host+" requires authentication", "401", serveFix)
	// A secret with a wrong password: refused by the registry, not
	// followed by anonymous access.
	deniedWith("with a wrong password", create(withSecrets(podOf(granted, "wrong-secret", signed), "wrongcred")),
		"registry "+reg.Host+" requires authentication or refused the credentials", "401", serveFix)

	// Ungranted: keyward may not read the secret; fail closed, naming
	// the refusal (the apiserver's RBAC message) and the fix.
	deniedWith("a secret keyward may not read", create(withSecrets(podOf(ungranted, "with-secret", signed), "regcred")),
		"image pull secret "+ungranted+"/regcred",
		"grant keyward serve's service account get on secrets in namespace "+ungranted+" (see the RBAC of the deployment manifests)",
		"is forbidden", id.Username, `cannot get resource "secrets"`)
	// The fix the message names works, and at once: a refused read is
	// not remembered.
	applyShippedRBAC(t, cp, id, ungranted)
	k8senv.WaitFor(t, 10*time.Second, "the granted secret to be read", func(ctx context.Context) error {
		_, err := cp.DryRunPod(ctx, withSecrets(podOf(ungranted, "granted-later", signed), "regcred"))
		return err
	})

	for _, m := range messages {
		// The CLI's fix is no fix for a webhook.
		if strings.Contains(m, "--password-stdin") {
			t.Errorf("the message names the CLI's fix: %s", m)
		}
	}

	for _, m := range append(messages, k.output(t)) {
		if strings.Contains(m, pullPassword) || strings.Contains(m, base64.StdEncoding.EncodeToString([]byte(pullUser+":"+pullPassword))) {
			t.Errorf("the registry password is in a message or keyward's log: %s", m)
		}
	}
}

// dockerConfigJSON is a docker config (the .dockerconfigjson of a
// kubernetes.io/dockerconfigjson secret) with one registry's credential.
func dockerConfigJSON(host, user, password string) []byte {
	b, err := json.Marshal(map[string]any{"auths": map[string]any{host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return b
}
