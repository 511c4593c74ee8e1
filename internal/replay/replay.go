// Package replay records the HTTP requests a client makes to a registry
// and replays them with a bare client: the "HTTP floor" the benchmarks in
// bench/ compare keyward with. It is a helper of benchmark code only.
package replay

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/timing"
)

// Request is one recorded request, as a replaying client sends it, and
// the status the registry answered.
type Request struct {
	Method, URI, Accept string
	Status              int
}

// Recorder is a reverse proxy to a registry that records the requests
// passing through.
type Recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []Request
}

// NewRecorder starts a recording proxy to the plain-HTTP registry at
// registryHost, forwarding through transport (nil: the default), closed by
// t.Cleanup.
func NewRecorder(t testing.TB, registryHost string, transport http.RoundTripper) *Recorder {
	t.Helper()
	r := &Recorder{}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: registryHost})
	proxy.Transport = transport
	proxy.ModifyResponse = func(resp *http.Response) error {
		req := resp.Request
		r.mu.Lock()
		r.reqs = append(r.reqs, Request{Method: req.Method, URI: req.URL.RequestURI(), Accept: strings.Join(req.Header.Values("Accept"), ", "), Status: resp.StatusCode})
		r.mu.Unlock()
		return nil
	}
	r.srv = httptest.NewServer(proxy)
	t.Cleanup(r.srv.Close)
	return r
}

// Host is the proxy's host:port.
func (r *Recorder) Host() string { return strings.TrimPrefix(r.srv.URL, "http://") }

// Take returns the requests recorded so far and forgets them.
func (r *Recorder) Take() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = nil
	return out
}

// Replay sends reqs to host with n concurrent workers over one keep-alive
// transport (n = 1: one at a time, in order), reading every body. It fails
// on a status other than the recorded one.
func Replay(host string, reqs []Request, n int) (time.Duration, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost, tr.MaxConnsPerHost = n, n
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	errs := make([]error, len(reqs))
	start := time.Now()
	timing.Parallel(len(reqs), n, func(i int) {
		q := reqs[i]
		req, err := http.NewRequest(q.Method, "http://"+host+q.URI, nil)
		if err != nil {
			errs[i] = err
			return
		}
		if q.Accept != "" {
			req.Header.Set("Accept", q.Accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			errs[i] = err
			return
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != q.Status {
			err = fmt.Errorf("%s %s: %s, recorded %d", q.Method, q.URI, resp.Status, q.Status)
		}
		errs[i] = err
	})
	d := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return d, err
		}
	}
	return d, nil
}
