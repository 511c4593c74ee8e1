package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/keyward/keyward/internal/version"
)

// Bounds of the Kubernetes API client.
const (
	// maxKubeResponse bounds one response of the API server: a Secret
	// holds at most 1 MiB of data (etcd's default request limit), which
	// base64 and JSON grow by a third.
	maxKubeResponse = 4 << 20
	// kubeTimeout bounds one API request.
	kubeTimeout = 5 * time.Second
	// kubeTTL is how long namespace labels and pull secrets are kept: a
	// relabelled namespace or a rotated secret is seen within it.
	kubeTTL = 10 * time.Second
	// kubeCacheEntries bounds the namespaces and the secrets kept.
	kubeCacheEntries = 4096
)

// kubeAPI is what keyward serve reads from the Kubernetes API.
type kubeAPI interface {
	// NamespaceLabels returns the labels of a namespace.
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
	// Secret returns a secret of a namespace.
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// clientGo is kubeAPI over client-go's typed core/v1 client (only the
// core group: the server reads namespaces and secrets).
type clientGo struct {
	core typedcorev1.CoreV1Interface
}

// newKubeAPI connects to the API server of a kubeconfig file (its current
// context), or with "" of the pod's service account (in-cluster).
func newKubeAPI(kubeconfig string) (kubeAPI, error) {
	var rc *rest.Config
	var err error
	if kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes.kubeconfig %s: %w", kubeconfig, err)
		}
	} else {
		rc, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("the Kubernetes API: no kubernetes.kubeconfig is given and the in-cluster configuration cannot be used (%w): run keyward serve in a pod with a service account, or set kubernetes.kubeconfig", err)
		}
	}
	rc.UserAgent = "keyward/" + version.Version
	rc.Timeout = kubeTimeout
	// An admission burst asks for many namespaces and secrets at once;
	// client-go's default (5 per second) would queue them past the
	// webhook's timeout.
	rc.QPS, rc.Burst = 100, 200
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return boundedTransport{rt} }
	core, err := typedcorev1.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("the Kubernetes API client: %w", err)
	}
	return &clientGo{core: core}, nil
}

func (c *clientGo) NamespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	ns, err := c.core.Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

func (c *clientGo) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return c.core.Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

// boundedTransport fails a response body longer than maxKubeResponse.
type boundedTransport struct{ next http.RoundTripper }

func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > maxKubeResponse {
		resp.Body.Close()
		return nil, fmt.Errorf("the API server's response to %s is %d bytes, more than the %d allowed", req.URL.Path, resp.ContentLength, maxKubeResponse)
	}
	resp.Body = &boundedBody{rc: resp.Body, left: maxKubeResponse}
	return resp, nil
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the bound from a longer
		// one.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("the API server's response is larger than %d bytes", maxKubeResponse)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// ttlCache keeps values for a while, at most max of them, and fetches a
// missing one once however many callers ask at the same moment. Errors
// are not kept. Fetches run under the server's lifetime with their own
// timeout, so that a caller giving up does not fail the others.
type ttlCache[V any] struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]ttlEntry[V]
	group   singleflight.Group
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, max int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, now: time.Now, entries: map[string]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(ctx context.Context, key string, fetch func(context.Context) (V, error)) (V, error) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && c.now().Before(e.expires) {
		return e.v, nil
	}
	ch := c.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), kubeTimeout)
		defer cancel()
		v, err := fetch(fctx)
		if err != nil {
			return v, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.entries) >= c.max {
			now := c.now()
			for k, e := range c.entries {
				if !now.Before(e.expires) {
					delete(c.entries, k)
				}
			}
			for k := range c.entries {
				if len(c.entries) < c.max {
					break
				}
				delete(c.entries, k)
			}
		}
		c.entries[key] = ttlEntry[V]{v: v, expires: c.now().Add(c.ttl)}
		return v, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			var zero V
			return zero, r.Err
		}
		return r.Val.(V), nil
	case <-ctx.Done():
		var zero V
		return zero, context.Cause(ctx)
	}
}

// kubeClient returns the Kubernetes API client, made on first use.
func (s *Server) kubeClient() (kubeAPI, error) {
	s.kubeMu.Lock()
	defer s.kubeMu.Unlock()
	if s.kube != nil {
		return s.kube, nil
	}
	k, err := newKubeAPI(s.cfg.Kubernetes.Kubeconfig)
	if err != nil {
		return nil, err
	}
	s.kube = k
	return k, nil
}

// namespaceLabels returns the labels of a namespace, cached for kubeTTL.
func (s *Server) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	k, err := s.kubeClient()
	if err != nil {
		return nil, err
	}
	m, err := s.nsLabels.get(ctx, name, func(ctx context.Context) (map[string]string, error) {
		return k.NamespaceLabels(ctx, name)
	})
	if err != nil {
		return nil, fmt.Errorf("read the labels of namespace %s through the Kubernetes API: %w", name, kubeHint(err, "get on namespaces"))
	}
	return m, nil
}

// kubeHint adds the fix to an API error that has an obvious one. The fix
// comes before the API server's message, which repeats the namespace and
// names the user: an admission denial is clipped per image, and the end of
// a long message is lost.
func kubeHint(err error, permission string) error {
	var se interface{ Status() metav1.Status }
	if errors.As(err, &se) {
		switch se.Status().Code {
		case http.StatusForbidden:
			return fmt.Errorf("refused (403): grant keyward serve's service account %s (see the RBAC of the deployment manifests): %w", permission, err)
		case http.StatusUnauthorized:
			return fmt.Errorf("the API server refused keyward serve's credentials (401): check kubernetes.kubeconfig or the service account token: %w", err)
		}
	}
	return err
}
