package k8s

import (
	"context"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyward/keyward/internal/testenv"
)

// TestAdmission registers keyward serve's validating and mutating webhooks
// with a real kube-apiserver and creates, through client-go, Pods,
// Deployments, CronJobs, init containers and ephemeral containers whose
// images are signed by notation through keyward, unsigned, signed by an
// untrusted key, carry a tampered signature, match a skip statement, or are
// signed by the untrusted key under an audit statement, in
// olareg (OCI referrers API) and in distribution (referrers tag schema).
// Signed images are admitted and pinned to the digest that was verified;
// the others are denied with a Forbidden that names the image, the
// container and the failing check; the audited one is admitted with an
// admission warning naming the check; a skipped image is admitted untouched
// without a registry call (its repository holds nothing); server-side dry
// run answers the same and stores nothing.
func TestAdmission(t *testing.T) {
	w := newWorld(t)
	regs := []*testenv.Registry{testenv.StartOlareg(t), testenv.StartDistribution(t)}
	var hosts, skipScopes, auditScopes []string
	for _, r := range regs {
		hosts = append(hosts, r.Host)
		skipScopes = append(skipScopes, r.Host+"/skipped/app")
		auditScopes = append(auditScopes, r.Host+"/team/audited")
	}
	policy := w.policy(t, "trustpolicy.json",
		statement{name: "skipped", scopes: skipScopes, level: "skip"},
		statement{name: "audited", scopes: auditScopes, level: "audit", stores: []string{"ca:main"}},
		statement{name: "all", scopes: []string{"*"}, level: "strict", stores: []string{"ca:main"}})
	k := startKeyward(t, w.baseConfig(policy, hosts...))

	for _, reg := range regs {
		name := "distribution"
		if reg.Referrers {
			name = "olareg"
		}
		t.Run(name, func(t *testing.T) {
			im := w.pushImages(t, reg)
			group := "admission-" + name
			ns := w.cp.Namespace(t, map[string]string{selectorLabel: group})
			k.register(t, w.cp, group, ns, im.unsigned, im.signed, im.signedDigest)
			admissionCases(t, w, ns, im)
		})
	}
}

func admissionCases(t *testing.T, w *world, ns string, im *images) {
	ctx := context.Background()
	cs := w.cp.Clientset
	pods := cs.CoreV1().Pods(ns)
	pinned := im.signed + "@" + im.signedDigest

	t.Run("pod signed", func(t *testing.T) {
		if _, err := pods.Create(ctx, podOf(ns, "signed", im.signed), metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed image %s: %v", im.signed, err)
		}
		got, err := pods.Get(ctx, "signed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Containers[0].Image; img != pinned {
			t.Errorf("stored image %q, want it pinned to the verified digest: %q", img, pinned)
		}
	})
	t.Run("pod already pinned", func(t *testing.T) {
		// Idempotent: a pinned image stays as it is.
		if _, err := pods.Create(ctx, podOf(ns, "pinned", pinned), metav1.CreateOptions{}); err != nil {
			t.Fatalf("pinned image %s: %v", pinned, err)
		}
		got, err := pods.Get(ctx, "pinned", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Containers[0].Image; img != pinned {
			t.Errorf("stored image %q, want %q unchanged", img, pinned)
		}
	})
	for _, tc := range []struct {
		name, image string
		checks      []string
	}{
		{"pod unsigned", im.unsigned, checkNoSignature},
		{"pod untrusted", im.untrusted, checkUntrusted},
		{"pod tampered", im.tampered, checkTampered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			_, err := pods.Create(ctx, podOf(ns, name, tc.image), metav1.CreateOptions{})
			denied(t, err, tc.image, "app", tc.checks...)
			if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("the denied pod was stored: %v", err)
			}
		})
	}
	t.Run("pod skipped", func(t *testing.T) {
		// The skip statement's registry scope is in a registry that
		// is up, but the repository holds nothing: verifying it would
		// fail, so admission proves no registry call was needed.
		if _, err := pods.Create(ctx, podOf(ns, "skipped", im.skipped), metav1.CreateOptions{}); err != nil {
			t.Fatalf("skipped image %s: %v", im.skipped, err)
		}
		got, err := pods.Get(ctx, "skipped", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Containers[0].Image; img != im.skipped {
			t.Errorf("stored image %q, want %q untouched (nothing was resolved)", img, im.skipped)
		}
	})
	t.Run("audit warning", func(t *testing.T) {
		// An audit statement logs a failed authenticity check: the pod
		// is admitted (and pinned), and the client is warned.
		var got warnings
		cfg := rest.CopyConfig(w.cp.Config)
		cfg.WarningHandler = &got
		warned, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := warned.CoreV1().Pods(ns).Create(ctx, podOf(ns, "audited", im.audited), metav1.CreateOptions{}); err != nil {
			t.Fatalf("image %s under an audit statement: %v", im.audited, err)
		}
		if !got.has(im.audited, "authenticity") {
			t.Errorf("no admission warning naming %s and the authenticity check; warnings: %q", im.audited, got.list)
		}
	})
	t.Run("init container", func(t *testing.T) {
		p := podOf(ns, "init-unsigned", im.signed)
		p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: im.unsigned}}
		_, err := pods.Create(ctx, p, metav1.CreateOptions{})
		denied(t, err, im.unsigned, "setup", checkNoSignature...)

		p = podOf(ns, "init-signed", im.signed)
		p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: im.signed2}}
		if _, err := pods.Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed init container: %v", err)
		}
		got, err := pods.Get(ctx, "init-signed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img, want := got.Spec.InitContainers[0].Image, im.signed2+"@"+im.signed2Digest; img != want {
			t.Errorf("init container image %q, want %q", img, want)
		}
		if img := got.Spec.Containers[0].Image; img != pinned {
			t.Errorf("container image %q, want %q", img, pinned)
		}
	})
	t.Run("ephemeral container", func(t *testing.T) {
		if _, err := pods.Create(ctx, podOf(ns, "debugged", im.signed), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// kubectl debug adds an ephemeral container through the
		// pods/ephemeralcontainers subresource (an UPDATE).
		add := func(name, image string) error {
			p, err := pods.Get(ctx, "debugged", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: name, Image: image}})
			_, err = pods.UpdateEphemeralContainers(ctx, "debugged", p, metav1.UpdateOptions{})
			return err
		}
		denied(t, add("debugger", im.unsigned), im.unsigned, "debugger", checkNoSignature...)
		if err := add("shell", im.signed2); err != nil {
			t.Fatalf("signed ephemeral container: %v", err)
		}
		got, err := pods.Get(ctx, "debugged", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got.Spec.EphemeralContainers); n != 1 || got.Spec.EphemeralContainers[0].Name != "shell" {
			t.Errorf("ephemeral containers %+v, want only the signed one", got.Spec.EphemeralContainers)
		}
	})
	t.Run("deployment", func(t *testing.T) {
		deployments := cs.AppsV1().Deployments(ns)
		_, err := deployments.Create(ctx, deployment(ns, "unsigned", im.unsigned), metav1.CreateOptions{})
		denied(t, err, im.unsigned, "app", checkNoSignature...)
		_, err = deployments.Create(ctx, deployment(ns, "untrusted", im.untrusted), metav1.CreateOptions{})
		denied(t, err, im.untrusted, "app", checkUntrusted...)
		if _, err := deployments.Create(ctx, deployment(ns, "signed", im.signed), metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed: %v", err)
		}
		got, err := deployments.Get(ctx, "signed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := got.Spec.Template.Spec.Containers[0].Image; img != pinned {
			t.Errorf("pod template image %q, want %q", img, pinned)
		}
		// An update to an unsigned image is denied too.
		got.Spec.Template.Spec.Containers[0].Image = im.tampered
		_, err = deployments.Update(ctx, got, metav1.UpdateOptions{})
		denied(t, err, im.tampered, "app", checkTampered...)
	})
	t.Run("cronjob", func(t *testing.T) {
		cronjobs := cs.BatchV1().CronJobs(ns)
		_, err := cronjobs.Create(ctx, cronJob(ns, "unsigned", im.unsigned), metav1.CreateOptions{})
		denied(t, err, im.unsigned, "job", checkNoSignature...)
		if _, err := cronjobs.Create(ctx, cronJob(ns, "signed", im.signed), metav1.CreateOptions{}); err != nil {
			t.Fatalf("signed: %v", err)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		dry := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
		got, err := pods.Create(ctx, podOf(ns, "dry-signed", im.signed), dry)
		if err != nil {
			t.Fatalf("signed: %v", err)
		}
		if img := got.Spec.Containers[0].Image; img != pinned {
			t.Errorf("dry-run answer's image %q, want %q", img, pinned)
		}
		_, err = pods.Create(ctx, podOf(ns, "dry-unsigned", im.unsigned), dry)
		denied(t, err, im.unsigned, "app", checkNoSignature...)
		_, err = cs.AppsV1().Deployments(ns).Create(ctx, deployment(ns, "dry-untrusted", im.untrusted), dry)
		denied(t, err, im.untrusted, "app", checkUntrusted...)
		for _, name := range []string{"dry-signed", "dry-unsigned"} {
			if _, err := pods.Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("dry run stored pod %s: %v", name, err)
			}
		}
	})
}

// deployment is a Deployment of one replica whose pod template has one
// container "app" running image.
func deployment(ns, name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// cronJob is a CronJob whose job template has one container "job" running
// image.
func cronJob(ns, name, image string) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule: "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{{Name: "job", Image: image}}},
			}}},
		},
	}
}

// warnings collects the warnings the apiserver passes on (admission
// webhooks' warnings arrive as Warning headers).
type warnings struct {
	mu   sync.Mutex
	list []string
}

// HandleWarningHeader implements rest.WarningHandler.
func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// has reports whether one warning contains every part.
func (w *warnings) has(parts ...string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, text := range w.list {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(text, p)
		}
		if all {
			return true
		}
	}
	return false
}

// TestRegistryDown checks that an image whose registry does not answer is
// denied (fail closed, as the webhooks' failurePolicy: Fail promises) with
// the reason in the message, also in a server-side dry run.
func TestRegistryDown(t *testing.T) {
	w := newWorld(t)
	reg := testenv.StartOlareg(t)
	policy := w.policy(t, "trustpolicy.json", statement{name: "all", scopes: []string{"*"}, level: "strict", stores: []string{"ca:main"}})
	k := startKeyward(t, w.baseConfig(policy, reg.Host))
	signed, desc := w.pushSigned(t, reg, "team/app", "v1", w.main)
	unsigned := tag(t, mustPush(t, reg, "team/unsigned"), "v1")
	ns := w.cp.Namespace(t, map[string]string{selectorLabel: "registry-down"})
	k.register(t, w.cp, "registry-down", ns, unsigned, signed, desc.Digest.String())

	ctx := context.Background()
	down := w.downHost + "/team/app:v1"
	_, err := w.cp.Clientset.CoreV1().Pods(ns).Create(ctx, podOf(ns, "down", down), metav1.CreateOptions{})
	denied(t, err, down, "app", checkDown...)
	_, err = w.cp.DryRunPod(ctx, podOf(ns, "down-dry", down))
	denied(t, err, down, "app", checkDown...)
	d := deployment(ns, "down", w.downHost+"/team/app@sha256:"+strings.Repeat("0", 64))
	_, err = w.cp.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
	denied(t, err, d.Spec.Template.Spec.Containers[0].Image, "app", checkDown...)
}

func mustPush(t *testing.T, reg *testenv.Registry, repo string) string {
	t.Helper()
	ref, _ := testenv.PushArtifact(t, reg, repo)
	return ref
}
