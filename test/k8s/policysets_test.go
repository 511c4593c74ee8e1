package k8s

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testenv/k8senv"
)

// TestPolicySets configures per-namespace policy sets (config policySets):
// one selected by namespace name that trusts only the stranger's root, one
// selected by a namespaceSelector over the namespace's labels (read through
// the Kubernetes API with kubernetes.kubeconfig) that skips verification,
// and the default policy trusting only main. The same images are admitted
// or denied by the set of the namespace they are created in.
func TestPolicySets(t *testing.T) {
	w := newWorld(t)
	reg := testenv.StartOlareg(t)
	defaultPolicy := w.policy(t, "default.json", statement{name: "main", scopes: []string{"*"}, level: "strict", stores: []string{"ca:main"}})
	tenantPolicy := w.policy(t, "tenant.json", statement{name: "stranger", scopes: []string{"*"}, level: "strict", stores: []string{"ca:stranger"}})
	openPolicy := w.policy(t, "open.json", statement{name: "open", scopes: []string{"*"}, level: "skip"})

	const group = "policy-sets"
	tenant := w.cp.Namespace(t, map[string]string{selectorLabel: group})
	open := w.cp.Namespace(t, map[string]string{selectorLabel: group, "keyward.test/policy": "open"})
	plain := w.cp.Namespace(t, map[string]string{selectorLabel: group})

	cfg := w.baseConfig(defaultPolicy, reg.Host)
	cfg["kubernetes"] = map[string]any{"kubeconfig": w.cp.Kubeconfig}
	cfg["policySets"] = []any{
		map[string]any{"name": "tenant", "namespaces": []string{tenant}, "trustPolicy": tenantPolicy, "trustStore": w.store},
		map[string]any{"name": "open", "namespaceSelector": map[string]any{"matchLabels": map[string]string{"keyward.test/policy": "open"}},
			"trustPolicy": openPolicy, "trustStore": w.store},
	}
	k := startKeyward(t, cfg)

	signed, desc := w.pushSigned(t, reg, "team/app", "v1", w.main)
	stranger, sdesc := w.pushSigned(t, reg, "team/stranger", "v1", w.stranger)
	unsigned := tag(t, mustPush(t, reg, "team/unsigned"), "v1")
	k.register(t, w.cp, group, plain, unsigned, signed, desc.Digest.String())

	ctx := context.Background()
	create := func(ns, name, image string) error {
		_, err := w.cp.Clientset.CoreV1().Pods(ns).Create(ctx, podOf(ns, name, image), metav1.CreateOptions{})
		return err
	}
	pinnedAs := func(ns, name, want string) {
		t.Helper()
		p, err := w.cp.Clientset.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Spec.Containers[0].Image; got != want {
			t.Errorf("%s/%s: image %q, want %q", ns, name, got, want)
		}
	}

	// The default policy: main trusted, the stranger not.
	if err := create(plain, "main", signed); err != nil {
		t.Errorf("default set, signed by main: %v", err)
	}
	denied(t, create(plain, "stranger", stranger), stranger, "app", checkUntrusted...)
	denied(t, create(plain, "unsigned", unsigned), unsigned, "app", checkNoSignature...)

	// The tenant's set, selected by name: the stranger trusted, main not.
	if err := create(tenant, "stranger", stranger); err != nil {
		t.Errorf("tenant set, signed by the stranger: %v", err)
	} else {
		pinnedAs(tenant, "stranger", stranger+"@"+sdesc.Digest.String())
	}
	denied(t, create(tenant, "main", signed), signed, "app", checkUntrusted...)

	// The set selected by label: verification skipped.
	if err := create(open, "unsigned", unsigned); err != nil {
		t.Errorf("open set (namespaceSelector), unsigned: %v", err)
	}
	// A namespace relabelled out of the selector falls back to the
	// default policy once keyward sees the new labels.
	nsObj, err := w.cp.Clientset.CoreV1().Namespaces().Get(ctx, open, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	delete(nsObj.Labels, "keyward.test/policy")
	if _, err := w.cp.Clientset.CoreV1().Namespaces().Update(ctx, nsObj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	k8senv.WaitFor(t, 30*time.Second, "the relabelled namespace to get the default policy", func(ctx context.Context) error {
		_, err := w.cp.DryRunPod(ctx, podOf(open, "unsigned-again", unsigned))
		if !apierrors.IsForbidden(err) {
			return fmt.Errorf("unsigned image in %s after relabelling: %v, want Forbidden", open, err)
		}
		return nil
	})

}

// TestHotReload changes the default trust policy file of a running keyward
// serve (reload.interval 1s): a valid change (a skip statement for the
// unsigned image's repository) takes effect without a restart; an invalid
// one (not JSON) is refused and logged naming the file, and the last valid
// policy keeps serving: what it admitted stays admitted, what it denied
// stays denied.
func TestHotReload(t *testing.T) {
	w := newWorld(t)
	reg := testenv.StartOlareg(t)
	strict := statement{name: "main", scopes: []string{"*"}, level: "strict", stores: []string{"ca:main"}}
	policy := w.policy(t, "trustpolicy.json", strict)
	cfg := w.baseConfig(policy, reg.Host)
	cfg["reload"] = map[string]string{"interval": "1s"}
	k := startKeyward(t, cfg)

	signed, desc := w.pushSigned(t, reg, "team/app", "v1", w.main)
	unsigned := tag(t, mustPush(t, reg, "team/unsigned"), "v1")
	other := tag(t, mustPush(t, reg, "team/other"), "v1")
	const group = "hot-reload"
	ns := w.cp.Namespace(t, map[string]string{selectorLabel: group})
	k.register(t, w.cp, group, ns, unsigned, signed, desc.Digest.String())

	ctx := context.Background()
	denied(t, dryRunErr(ctx, w, ns, unsigned), unsigned, "app", checkNoSignature...)

	// A valid change: the unsigned repository is skipped.
	skip := statement{name: "unsigned", scopes: []string{strings.TrimSuffix(unsigned, ":v1")}, level: "skip"}
	w.policy(t, "trustpolicy.json", skip, strict)
	k8senv.WaitFor(t, 30*time.Second, "the valid policy change to take effect", func(ctx context.Context) error {
		return dryRunErr(ctx, w, ns, unsigned)
	})
	if _, err := w.cp.Clientset.CoreV1().Pods(ns).Create(ctx, podOf(ns, "after-reload", unsigned), metav1.CreateOptions{}); err != nil {
		t.Errorf("unsigned image after the valid change: %v", err)
	}

	// An invalid change: refused, logged, the valid policy keeps serving.
	writeAtomic(t, policy, []byte(`{"version": "1.0", "trustPolicies": [`))
	k8senv.WaitFor(t, 30*time.Second, "keyward serve to log the refused policy", func(context.Context) error {
		if !strings.Contains(k.output(t), filepath.Base(policy)) {
			return fmt.Errorf("the log does not name %s yet", policy)
		}
		return nil
	})
	time.Sleep(2 * time.Second) // two more reload intervals
	if err := dryRunErr(ctx, w, ns, unsigned); err != nil {
		t.Errorf("after an invalid change, the skipped image is no longer admitted: %v", err)
	}
	denied(t, dryRunErr(ctx, w, ns, other), other, "app", checkNoSignature...)
	if _, err := w.cp.Clientset.CoreV1().Pods(ns).Create(ctx, podOf(ns, "signed", signed), metav1.CreateOptions{}); err != nil {
		t.Errorf("signed image after an invalid change: %v", err)
	}
}

// dryRunErr is the error of a server-side dry-run create of a Pod of
// image.
func dryRunErr(ctx context.Context, w *world, ns, image string) error {
	_, err := w.cp.DryRunPod(ctx, podOf(ns, "dry", image))
	return err
}
