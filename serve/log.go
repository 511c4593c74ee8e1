package serve

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// NewLogger returns the logger log: configures, writing to w: JSON lines
// (the default) or text, from level on (default info).
func NewLogger(cfg LogConfig, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch cfg.Level {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("log.level %q is not a level: give debug, info, warn or error", cfg.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch cfg.Format {
	case "", "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log.format %q is not a format: give json or text", cfg.Format)
}

// statusRecorder remembers the status code a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// instrument counts and times every request by the route that served it,
// and logs it: one line at debug, a warning when the server failed (5xx).
// Neither bodies nor headers are logged: they may hold credentials.
func (s *Server) instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		// The mux set the pattern of the route it chose on r; none (404,
		// 405) is "other", so that unknown paths add no label values.
		endpoint := r.Pattern
		if endpoint == "" {
			endpoint = "other"
		}
		d := time.Since(start)
		s.metrics.request(endpoint, rec.code, d)
		level := slog.LevelDebug
		if rec.code >= 500 {
			level = slog.LevelWarn
		}
		// Checked first: the attributes of a line not written (debug, for
		// every request answered) would still be built.
		if s.log.Enabled(r.Context(), level) {
			s.log.LogAttrs(r.Context(), level, "request", slog.String("method", r.Method), slog.String("endpoint", endpoint),
				slog.String("path", r.URL.Path), slog.Int("code", rec.code), slog.Float64("durationMs", float64(d.Microseconds())/1000),
				slog.String("remote", r.RemoteAddr))
		}
	})
}
