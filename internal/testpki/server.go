package testpki

import (
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// CleanupTB is the part of testing.TB that the responders need: they start
// an HTTP server on 127.0.0.1 and stop it when the test ends.
type CleanupTB interface {
	TB
	Cleanup(func())
}

// maxRequestBody bounds what the responders read from a request: OCSP and
// timestamp queries are a few hundred bytes.
const maxRequestBody = 64 << 10

// server is an HTTP server on a free loopback port, stopped by Cleanup.
type server struct {
	base  string // http://127.0.0.1:port
	down  atomic.Bool
	delay atomic.Int64 // time.Duration before each answer
}

// refuse waits out the delay, then answers 500 Internal Server Error and
// returns true while the server is down (or the client gave up waiting).
func (s *server) refuse(w http.ResponseWriter, r *http.Request) bool {
	if d := time.Duration(s.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return true
		}
	}
	if !s.down.Load() {
		return false
	}
	http.Error(w, "responder is down", http.StatusInternalServerError)
	return true
}

// startServer serves h on 127.0.0.1 at a free port until the test ends.
func startServer(t CleanupTB, h http.Handler) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testpki: listen on 127.0.0.1: %v", err)
	}
	s := &server{base: "http://" + ln.Addr().String()}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Serve returns only when Close is called (ErrServerClosed) or
		// the listener fails, which a test sees as refused connections.
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return s
}
