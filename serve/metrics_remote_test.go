package serve

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/reference"
)

// TestMetricsKeepDroppedRemotes checks that the registry counters never go
// back when the pool of registry clients drops one (UntrackRemote): its
// counts stay in the totals.
func TestMetricsKeepDroppedRemotes(t *testing.T) {
	reg := httptest.NewServer(http.NotFoundHandler())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	m := NewMetrics()
	r := oci.NewRemote(oci.RemoteOptions{PlainHTTP: func(string) bool { return true }})
	ref, err := reference.Parse(host + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(context.Background(), ref); err == nil {
		t.Fatal("resolved a tag the registry does not have")
	}
	m.TrackRemote(r)
	before := registryRequests(t, m, host)
	if before == "" || before == "0" {
		t.Fatalf("requests to %s counted %q after a resolution", host, before)
	}
	m.UntrackRemote(r)
	if after := registryRequests(t, m, host); after != before {
		t.Errorf("requests to %s: %s before the client was dropped, %s after", host, before, after)
	}
}

// registryRequests scrapes m for keyward_serve_registry_requests_total of
// host.
func registryRequests(t *testing.T, m *Metrics, host string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	re := regexp.MustCompile(`(?m)^keyward_serve_registry_requests_total\{registry="` + regexp.QuoteMeta(host) + `"\} (\S+)$`)
	if m := re.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}
