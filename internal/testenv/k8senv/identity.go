package k8senv

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// tokenSeconds is how long a service account token [ControlPlane.ServiceAccount]
// asks for lasts: the apiserver's minimum (10 minutes), longer than any test.
const tokenSeconds = 600

// Identity is a service account of the control plane with a token of its
// own: a real, non-admin user that RBAC authorizes like a pod's service
// account (user system:serviceaccount:<namespace>:<name>, groups
// system:serviceaccounts, system:serviceaccounts:<namespace> and
// system:authenticated). It may do nothing until a test binds roles to it.
type Identity struct {
	// Namespace and Name are the service account's.
	Namespace, Name string
	// Username is how the apiserver names it in RBAC decisions and errors.
	Username string
	// Config is a client configuration with its token.
	Config *rest.Config
	// Clientset is a client of Config.
	Clientset *kubernetes.Clientset
	// Kubeconfig is a kubeconfig file of the same identity (mode 0600, in
	// t.TempDir()).
	Kubeconfig string
}

// ServiceAccount creates the service account name in namespace (which must
// exist) and gets a token for it through the TokenRequest API, signed with
// the control plane's service account key, as the kubelet gets the token it
// mounts into a pod. The service account is not deleted: its namespace
// holds the test's objects until the control plane goes away.
func (cp *ControlPlane) ServiceAccount(t testing.TB, namespace, name string) *Identity {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := cp.Clientset.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("k8senv: create ServiceAccount %s/%s: %v", namespace, name, err)
	}
	seconds := int64(tokenSeconds)
	tr, err := cp.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("k8senv: token of ServiceAccount %s/%s: %v", namespace, name, err)
	}
	id := &Identity{Namespace: namespace, Name: name, Username: "system:serviceaccount:" + namespace + ":" + name}
	id.Config = rest.AnonymousClientConfig(cp.Config)
	id.Config.BearerToken = tr.Status.Token
	if id.Clientset, err = kubernetes.NewForConfig(id.Config); err != nil {
		t.Fatalf("k8senv: %v", err)
	}
	id.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: keyward-test
  cluster: {server: %q, certificate-authority-data: %q}
users:
- name: %s
  user: {token: %q}
contexts:
- name: keyward-test
  context: {cluster: keyward-test, user: %s}
current-context: keyward-test
`, cp.URL, base64.StdEncoding.EncodeToString(cp.Config.CAData), name, tr.Status.Token, name)
	if err := os.WriteFile(id.Kubeconfig, kc, 0o600); err != nil {
		t.Fatalf("k8senv: %v", err)
	}
	return id
}
