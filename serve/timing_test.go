package serve

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestServerTiming checks that a response carries its duration in the
// Server-Timing header, written before the status line (so also for a
// handler that never calls WriteHeader), and that it measures the handler.
func TestServerTiming(t *testing.T) {
	h := serverTiming(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		if r.URL.Path == "/implicit" {
			w.Write([]byte("ok"))
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, path := range []string{"/implicit", "/explicit"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		v, ok := strings.CutPrefix(rec.Header().Get(ServerTimingHeader), "app;dur=")
		if !ok {
			t.Fatalf("%s: %s: %q", path, ServerTimingHeader, rec.Header().Get(ServerTimingHeader))
		}
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil || ms < 20 || ms > 5000 {
			t.Errorf("%s: dur=%s, want the handler's 20 ms or a little more", path, v)
		}
	}
}
