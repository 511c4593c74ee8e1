package serve

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// apiServer is a stand-in for the two REST endpoints of the Kubernetes API
// keyward serve reads, GET /api/v1/namespaces/{ns} and GET
// /api/v1/namespaces/{ns}/secrets/{name}, reached by client-go through a
// kubeconfig: client-go's requests, decoding and errors are exercised for
// real. Tests that need admission, RBAC or watch belong on a real
// kube-apiserver (internal/testenv).
type apiServer struct {
	url        string
	kubeconfig string

	mu         sync.Mutex
	namespaces map[string]map[string]string // name -> labels
	secrets    map[string]map[string]any    // ns/name -> Secret object
	// status, when non-zero, answers every request with it (a Status).
	status atomic.Int32
	hits   atomic.Int64
}

func startAPIServer(t *testing.T) *apiServer {
	t.Helper()
	a := &apiServer{namespaces: map[string]map[string]string{}, secrets: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/namespaces/{ns}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		labels, ok := a.namespaces[r.PathValue("ns")]
		a.mu.Unlock()
		if !ok {
			a.notFound(w, "namespaces", r.PathValue("ns"))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": r.PathValue("ns"), "labels": labels, "uid": "ns-" + r.PathValue("ns"), "resourceVersion": "1"}})
	})
	mux.HandleFunc("GET /api/v1/namespaces/{ns}/secrets/{name}", func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		s, ok := a.secrets[r.PathValue("ns")+"/"+r.PathValue("name")]
		a.mu.Unlock()
		if !ok {
			a.notFound(w, "secrets", r.PathValue("name"))
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits.Add(1)
		if code := int(a.status.Load()); code != 0 {
			writeJSON(w, code, map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": code,
				"reason": http.StatusText(code), "message": fmt.Sprintf("%s %s refused by the test API server", r.Method, r.URL.Path)})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	a.url = srv.URL
	a.kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: %q}
users:
- name: test
  user: {token: test-token}
contexts:
- name: test
  context: {cluster: test, user: test}
current-context: test
`, srv.URL)
	if err := os.WriteFile(a.kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *apiServer) notFound(w http.ResponseWriter, resource, name string) {
	writeJSON(w, http.StatusNotFound, map[string]any{"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 404,
		"reason": "NotFound", "message": fmt.Sprintf("%s %q not found", resource, name), "details": map[string]any{"name": name, "kind": resource}})
}

func (a *apiServer) namespace(name string, labels map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.namespaces[name] = labels
}

// pullSecret stores a kubernetes.io/dockerconfigjson secret with a user
// and password for host.
func (a *apiServer) pullSecret(ns, name, host, user, password string) {
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{
		host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
	a.secret(ns, name, "kubernetes.io/dockerconfigjson", map[string][]byte{".dockerconfigjson": cfg})
}

func (a *apiServer) secret(ns, name, typ string, data map[string][]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secrets[ns+"/"+name] = map[string]any{"apiVersion": "v1", "kind": "Secret", "type": typ, "data": data,
		"metadata": map[string]any{"name": name, "namespace": ns, "uid": "uid-" + name, "resourceVersion": fmt.Sprint(len(a.secrets) + 1)}}
}

// TestBoundedBody checks that an API response longer than the bound fails.
func TestBoundedBody(t *testing.T) {
	b := &boundedBody{rc: nopCloser{strings.NewReader(strings.Repeat("x", maxKubeResponse+1))}, left: maxKubeResponse}
	buf := make([]byte, 64<<10)
	var err error
	for err == nil {
		_, err = b.Read(buf)
	}
	if !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v", err)
	}
	b = &boundedBody{rc: nopCloser{strings.NewReader(strings.Repeat("x", maxKubeResponse))}, left: maxKubeResponse}
	for err = nil; err == nil; {
		_, err = b.Read(buf)
	}
	if err.Error() != "EOF" {
		t.Errorf("a body of exactly the bound: %v", err)
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// TestTTLCache checks that values are kept for the TTL and at most max of
// them, that errors are not kept, and that concurrent misses fetch once.
func TestTTLCache(t *testing.T) {
	c := newTTLCache[int](time.Minute, 2)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	var fetches atomic.Int64
	fetch := func(v int, err error) func(context.Context) (int, error) {
		return func(context.Context) (int, error) {
			fetches.Add(1)
			time.Sleep(20 * time.Millisecond)
			return v, err
		}
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := c.get(ctx, "a", fetch(1, nil)); v != 1 || err != nil {
				t.Errorf("get a = %d, %v", v, err)
			}
		}()
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Errorf("8 concurrent misses fetched %d times", n)
	}
	if _, err := c.get(ctx, "b", fetch(0, errors.New("down"))); err == nil {
		t.Error("no error")
	}
	if v, _ := c.get(ctx, "b", fetch(2, nil)); v != 2 {
		t.Errorf("an error was kept: %d", v)
	}
	c.get(ctx, "c", fetch(3, nil))
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	if n > 2 {
		t.Errorf("%d entries kept, max 2", n)
	}
	fetches.Store(0)
	now = now.Add(2 * time.Minute)
	if v, _ := c.get(ctx, "c", fetch(4, nil)); v != 4 || fetches.Load() != 1 {
		t.Errorf("after the TTL: %d, %d fetches", v, fetches.Load())
	}
}
