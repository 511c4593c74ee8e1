package k8senv

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyward/keyward/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	StopShared()
	testenv.Cleanup()
	os.Exit(code)
}

// denyBad is an admission webhook that denies a Pod when one of its
// containers' images has the tag "bad", naming the image and the
// container; it counts the reviews it answered.
type denyBad struct{ reviews atomic.Int64 }

func (d *denyBad) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	d.reviews.Add(1)
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	var pod corev1.Pod
	if err := json.Unmarshal(review.Request.Object.Raw, &pod); err != nil {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusBadRequest, Message: err.Error()}
	}
	for _, c := range append(pod.Spec.InitContainers, pod.Spec.Containers...) {
		if strings.HasSuffix(c.Image, ":bad") {
			resp.Allowed = false
			resp.Result = &metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
				Message: fmt.Sprintf("image %q of container %q is bad", c.Image, c.Name)}
			break
		}
	}
	review.Request, review.Response = nil, resp
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&review)
}

func pod(ns, name, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

// TestControlPlaneWebhook starts the shared control plane, registers a
// validating webhook (clientConfig.url + caBundle) served by an HTTPS
// handler in this test with a certificate from NewServingCert, and checks
// through client-go that a Pod with a :bad image is forbidden with the
// webhook's message, in a server-side dry run too, while a good Pod is
// stored; a namespace the selector does not match is not reviewed.
func TestControlPlaneWebhook(t *testing.T) {
	cp := Shared(t)
	t.Logf("control plane ready in %v at %s", cp.Started, cp.URL)
	sc := NewServingCert(t, t.TempDir())
	pair, err := tls.LoadX509KeyPair(sc.CertFile, sc.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	hook := &denyBad{}
	srv := &http.Server{Handler: hook, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	label := map[string]string{"k8senv-test": "control-plane-webhook"}
	ns := cp.Namespace(t, label)
	other := cp.Namespace(t, nil)
	fail, none := admv1.Fail, admv1.SideEffectClassNone
	url := "https://" + ln.Addr().String() + "/validate"
	cfg := &admv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: ns},
		Webhooks: []admv1.ValidatingWebhook{{
			Name:                    "bad-images.k8senv.test",
			ClientConfig:            admv1.WebhookClientConfig{URL: &url, CABundle: sc.CAPEM},
			Rules:                   []admv1.RuleWithOperations{{Operations: []admv1.OperationType{admv1.Create}, Rule: admv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}}}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: label},
			AdmissionReviewVersions: []string{"v1"},
			SideEffects:             &none,
			FailurePolicy:           &fail,
		}},
	}
	cp.InstallWebhooks(t, cfg, nil, func(ctx context.Context) error {
		if _, err := cp.DryRunPod(ctx, pod(ns, "probe", "r.example/app:bad")); !apierrors.IsForbidden(err) {
			return fmt.Errorf("a :bad pod in a dry run: %v, want Forbidden", err)
		}
		return nil
	})

	ctx := context.Background()
	pods := cp.Clientset.CoreV1().Pods(ns)
	_, err = pods.Create(ctx, pod(ns, "bad", "r.example/team/app:bad"), metav1.CreateOptions{})
	want := `admission webhook "bad-images.k8senv.test" denied the request: image "r.example/team/app:bad" of container "app" is bad`
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), want) {
		t.Errorf("bad pod: %v\nwant Forbidden with %s", err, want)
	}
	if _, err := pods.Get(ctx, "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the denied pod was stored: %v", err)
	}
	if _, err := cp.DryRunPod(ctx, pod(ns, "dry", "r.example/team/app:bad")); !apierrors.IsForbidden(err) {
		t.Errorf("bad pod in a server-side dry run: %v", err)
	}
	if _, err := pods.Create(ctx, pod(ns, "good", "r.example/team/app:good"), metav1.CreateOptions{}); err != nil {
		t.Errorf("good pod: %v", err)
	}
	before := hook.reviews.Load()
	if _, err := cp.Clientset.CoreV1().Pods(other).Create(ctx, pod(other, "bad", "r.example/team/app:bad"), metav1.CreateOptions{}); err != nil {
		t.Errorf("a namespace outside the selector: %v", err)
	}
	if n := hook.reviews.Load() - before; n != 0 {
		t.Errorf("the webhook reviewed %d requests from a namespace outside its selector", n)
	}

	// The kubeconfig file reaches the same apiserver as the admin user.
	kc, err := clientcmd.BuildConfigFromFlags("", cp.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(kc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Pods(ns).Get(ctx, "good", metav1.GetOptions{}); err != nil {
		t.Errorf("through the kubeconfig: %v", err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil || v.GitVersion != "v1.31.0" {
		t.Errorf("server version %v, %v; want v1.31.0 (scripts/tools-k8s.sh sets it with -X)", v, err)
	}
}

// TestStartStop starts a control plane of its own and stops it: the
// processes are gone and the port is closed.
func TestStartStop(t *testing.T) {
	cp := Start(t)
	if _, err := cp.Clientset.CoreV1().Namespaces().List(context.Background(), metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(cp.URL, "https://")
	cp.Stop()
	for _, p := range cp.procs {
		select {
		case <-p.done:
		default:
			t.Errorf("%s still runs after Stop", p.name)
		}
	}
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", host)
	}
	cp.Stop() // twice is fine
}
