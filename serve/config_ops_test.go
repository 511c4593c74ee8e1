package serve

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadConfigCacheAndLog checks the defaults and values of cache.maxBytes,
// cache.resolutionTTL, cache.redis and log.
func TestLoadConfigCacheAndLog(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cache.ResolutionTTL != DefaultResolutionTTL || cfg.Cache.MaxBytes != DefaultMaxBytes || cfg.Cache.Redis != nil || cfg.Log != (LogConfig{}) {
		t.Errorf("defaults: %+v, log %+v", cfg.Cache, cfg.Log)
	}
	p := writeConfig(t, `
listen: :1
plainHTTP: true
policy: {trustPolicy: a, trustStore: b}
cache:
  maxBytes: 2097152
  resolutionTTL: 0s
  redis: {address: "redis:6379", passwordFile: pw, db: 3}
log: {format: text, level: debug}
`)
	cfg, err = LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	want := RedisConfig{Address: "redis:6379", PasswordFile: filepath.Join(filepath.Dir(p), "pw"), DB: 3, KeyPrefix: DefaultRedisKeyPrefix, Timeout: DefaultRedisTimeout}
	if cfg.Cache.MaxBytes != 2<<20 || cfg.Cache.ResolutionTTL != 0 || cfg.Cache.Redis == nil || *cfg.Cache.Redis != want {
		t.Errorf("cache %+v, redis %+v; want redis %+v", cfg.Cache, cfg.Cache.Redis, want)
	}
	if cfg.Log != (LogConfig{Format: "text", Level: "debug"}) {
		t.Errorf("log %+v", cfg.Log)
	}
	cfg, err = LoadConfig(writeConfig(t, "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\ncache: {redis: {address: \"r:1\", keyPrefix: \"\", timeout: 250ms}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Cache.Redis; r.KeyPrefix != "" || r.Timeout != 250*time.Millisecond {
		t.Errorf("redis %+v: an empty keyPrefix and a timeout given are kept", r)
	}

	for name, tc := range map[string]struct{ text, want string }{
		"redis address":   {"cache: {redis: {address: redis}}\n", `:4:26: /cache/redis/address: "redis" is not host:port`},
		"redis no adress": {"cache: {redis: {db: 1}}\n", `/cache/redis: missing properties: 'address'`},
		"redis timeout":   {"cache: {redis: {address: \"r:1\", timeout: 0s}}\n", `/cache/redis/timeout: "0s" is zero`},
		"redis db":        {"cache: {redis: {address: \"r:1\", db: 16}}\n", `/cache/redis/db`},
		"maxBytes":        {"cache: {maxBytes: 1000}\n", `/cache/maxBytes`},
		"log format":      {"log: {format: xml}\n", `/log/format`},
		"log level":       {"log: {level: trace}\n", `/log/level`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(writeConfig(t, "listen: :1\nplainHTTP: true\npolicy: {trustPolicy: a, trustStore: b}\n"+tc.text))
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0].String(ce.File), tc.want) {
				t.Errorf("err = %v, want one problem %q", err, tc.want)
			}
		})
	}
}

// TestNewLogger checks the formats and levels of log.
func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := NewLogger(LogConfig{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", "k", "v")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.HasPrefix(got, `{"time":`) || !strings.Contains(got, `"msg":"shown","k":"v"`) {
		t.Errorf("default (json, info): %q", got)
	}
	buf.Reset()
	log, _ = NewLogger(LogConfig{Format: "text", Level: "debug"}, &buf)
	log.Debug("shown")
	if got := buf.String(); !strings.Contains(got, "level=DEBUG msg=shown") {
		t.Errorf("text, debug: %q", got)
	}
	for _, bad := range []LogConfig{{Format: "xml"}, {Level: "trace"}} {
		if _, err := NewLogger(bad, &buf); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
