package k8senv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	admv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// enforceTimeout bounds the wait for a webhook configuration to take
// effect (4–6 ms measured; the apiserver reads the configurations through
// an informer, so nothing guarantees it).
const enforceTimeout = 30 * time.Second

// InstallWebhooks creates the validating and the mutating webhook
// configuration (either may be nil), then polls enforced every 20 ms until
// it returns nil, so that the test asserts against configurations the
// apiserver applies; after 30 s its last error fails the test. Both are
// deleted when the test ends. enforced usually makes a server-side dry-run
// create (see [ControlPlane.DryRunPod]) that the webhook must deny or
// change.
//
// A configuration is cluster-wide: tests that share a control plane give
// their webhooks a namespaceSelector that matches only their own
// namespaces, or a failurePolicy: Fail webhook that has stopped blocks every
// other test.
func (cp *ControlPlane) InstallWebhooks(t testing.TB, v *admv1.ValidatingWebhookConfiguration, m *admv1.MutatingWebhookConfiguration, enforced func(ctx context.Context) error) {
	t.Helper()
	ctx := context.Background()
	api := cp.Clientset.AdmissionregistrationV1()
	if v != nil {
		if _, err := api.ValidatingWebhookConfigurations().Create(ctx, v, metav1.CreateOptions{}); err != nil {
			t.Fatalf("k8senv: create ValidatingWebhookConfiguration %s: %v", v.Name, err)
		}
		t.Cleanup(func() {
			if err := api.ValidatingWebhookConfigurations().Delete(context.Background(), v.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("k8senv: delete ValidatingWebhookConfiguration %s: %v", v.Name, err)
			}
		})
	}
	if m != nil {
		if _, err := api.MutatingWebhookConfigurations().Create(ctx, m, metav1.CreateOptions{}); err != nil {
			t.Fatalf("k8senv: create MutatingWebhookConfiguration %s: %v", m.Name, err)
		}
		t.Cleanup(func() {
			if err := api.MutatingWebhookConfigurations().Delete(context.Background(), m.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("k8senv: delete MutatingWebhookConfiguration %s: %v", m.Name, err)
			}
		})
	}
	WaitFor(t, enforceTimeout, "the webhook configurations to be enforced", enforced)
}

// WaitFor polls cond every 20 ms until it returns nil; when timeout passes
// first, the test fails naming what and cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("k8senv: waited %v for %s; last: %v", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// DryRunPod creates pod with server-side dry run (metav1.DryRunAll): the
// admission webhooks run, nothing is stored. It returns the Pod as it would
// have been stored, mutations included.
func (cp *ControlPlane) DryRunPod(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, error) {
	return cp.Clientset.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
}

var notDNS = regexp.MustCompile(`[^a-z0-9-]+`)

// Namespace creates a namespace with labels and a unique name made from
// the test's name. It is not deleted: without a controller-manager a
// deleted namespace stays Terminating, and the control plane goes away
// with the test binary anyway.
func (cp *ControlPlane) Namespace(t testing.TB, labels map[string]string) string {
	t.Helper()
	name := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(name) > 50 {
		name = strings.Trim(name[len(name)-50:], "-")
	}
	b := make([]byte, 4)
	rand.Read(b)
	name += "-" + hex.EncodeToString(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := cp.Clientset.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("k8senv: create namespace %s: %v", name, err)
	}
	return name
}
