package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os/exec"

	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/redis/go-redis/v9"
	admissionv1 "k8s.io/api/admission/v1"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/verify"
)

// TestCheckRedisVerdict: what is read from Redis is used only when it is
// a well-formed verdict of the very key asked.
func TestCheckRedisVerdict(t *testing.T) {
	d := digest.FromString("artifact")
	key := strings.Join([]string{"r.example/app", d.String(), "policy", "store"}, "\x00")
	good := func() *verify.ReferenceResult {
		return &verify.ReferenceResult{Version: verify.ResultVersion, Reference: "r.example/app@" + d.String(), Verified: true,
			Artifact: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 10}, Signatures: []*verify.Result{}}
	}
	doc := func(k string, r *verify.ReferenceResult) []byte {
		data, _ := json.Marshal(redisVerdict{Key: k, Result: r})
		return data
	}
	if _, err := checkRedisVerdict(key, doc(key, good())); err != nil {
		t.Fatalf("a good verdict: %v", err)
	}
	failed := good()
	failed.Verified, failed.Error = false, &verify.ReferenceError{Kind: verify.ErrorNoSignature, Message: "none"}
	if _, err := checkRedisVerdict(key, doc(key, failed)); err != nil {
		t.Fatalf("a good failure: %v", err)
	}
	other := good()
	other.Artifact.Digest = digest.FromString("another artifact")
	withError := good()
	withError.Error = &verify.ReferenceError{Kind: verify.ErrorNoSignature}
	noError := good()
	noError.Verified = false
	skipped := good()
	skipped.Skipped = true
	oldVersion := good()
	oldVersion.Version = "0"
	noArtifact := good()
	noArtifact.Artifact = nil
	nullSignature := good()
	nullSignature.Signatures = []*verify.Result{nil}
	for name, data := range map[string][]byte{
		"not JSON":               []byte("\x00garbage"),
		"empty object":           []byte("{}"),
		"unknown field":          []byte(`{"key":"` + key + `","result":{},"extra":1}`),
		"two values":             append(doc(key, good()), doc(key, good())...),
		"another key":            doc("r.example/other\x00"+d.String()+"\x00policy\x00store", good()),
		"another artifact":       doc(key, other),
		"verified with an error": doc(key, withError),
		"failed without error":   doc(key, noError),
		"skipped":                doc(key, skipped),
		"other version":          doc(key, oldVersion),
		"verified, no artifact":  doc(key, noArtifact),
		"a null signature":       doc(key, nullSignature),
		"too large":              append(doc(key, good()), bytes.Repeat([]byte(" "), maxRedisValue)...),
	} {
		if r, err := checkRedisVerdict(key, data); err == nil {
			t.Errorf("%s: accepted as %+v", name, r)
		}
	}
}

// redisWorld is a world, a redis-server, and a client of it for the test.
type redisWorld struct {
	*world
	redis  *testenv.Redis
	client *redis.Client
}

func newRedisWorld(t *testing.T) *redisWorld {
	t.Helper()
	w := newWorld(t)
	r := testenv.StartRedisWithPassword(t, "pw-"+strings.Repeat("x", 8))
	c := redis.NewClient(&redis.Options{Addr: r.Address, Password: r.Password, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return &redisWorld{world: w, redis: r, client: c}
}

// redisConfig is w.config with the shared cache.
func (w *redisWorld) redisConfig(t *testing.T, hosts ...string) *Config {
	t.Helper()
	cfg := w.config(hosts...)
	cfg.Cache.Redis = &RedisConfig{Address: w.redis.Address, KeyPrefix: "test:", Timeout: DefaultRedisTimeout,
		PasswordFile: testpki.WriteFile(t, t.TempDir(), "redis-password", []byte(w.redis.Password+"\n"), 0o600)}
	return cfg
}

// redisKeyOf is where s keeps the verdict of ref (host/repo@digest).
func redisKeyOf(t *testing.T, s *Server, ref string) string {
	t.Helper()
	r, err := reference.Parse(ref)
	if err != nil {
		t.Fatal(err)
	}
	return s.redis.redisKey(cacheKey(s.table.Load().def, &credentialSet{}, r.Scope, r.Digest))
}

// TestRedisGarbageNotTrusted: a value in Redis that does not check (not
// JSON, a verified verdict of another artifact copied under the key of an
// unsigned one, a verdict without expiry) is a miss: the server verifies
// itself and denies the unsigned artifact.
func TestRedisGarbageNotTrusted(t *testing.T) {
	w := newRedisWorld(t)
	signed := w.signed(t, "garbage/signed")
	ctx := context.Background()
	one, err := New(w.redisConfig(t, w.reg.Host), Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, one)
	if r := post(t, http.DefaultClient, base, signed)[0]; !r.Verified {
		t.Fatalf("signed: %+v", r.Error)
	}
	good, err := w.client.Get(ctx, redisKeyOf(t, one, signed)).Result()
	if err != nil {
		t.Fatalf("the verdict of %s is not in Redis: %v", signed, err)
	}
	for name, value := range map[string]string{
		"not JSON":         "\x00\xffgarbage",
		"another artifact": good,
		"no expiry":        "",
	} {
		t.Run(name, func(t *testing.T) {
			unsigned, _ := testenv.PushArtifact(t, w.reg, "garbage/unsigned")
			two, err := New(w.redisConfig(t, w.reg.Host), Options{})
			if err != nil {
				t.Fatal(err)
			}
			base2, _ := serve(t, two)
			rk := redisKeyOf(t, two, unsigned)
			if name == "no expiry" {
				// A verdict of this very key, well-formed, but kept for
				// ever: a verdict must expire.
				d, _ := digest.Parse(unsigned[strings.Index(unsigned, "@")+1:])
				ref, _ := reference.Parse(unsigned)
				forged, _ := json.Marshal(redisVerdict{Key: cacheKey(two.table.Load().def, &credentialSet{}, ref.Scope, d), Result: &verify.ReferenceResult{
					Version: verify.ResultVersion, Reference: unsigned, Verified: true, Signatures: []*verify.Result{},
					Artifact: &ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d, Size: 1}}})
				value = string(forged)
				if err := w.client.Set(ctx, rk, value, 0).Err(); err != nil {
					t.Fatal(err)
				}
			} else if err := w.client.Set(ctx, rk, value, time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			before := scrape(t, base2)
			r := post(t, http.DefaultClient, base2, unsigned)[0]
			if r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorNoSignature {
				t.Fatalf("unsigned with %s in Redis: verified %v, error %+v", name, r.Verified, r.Error)
			}
			after := scrape(t, base2)
			if n := after["keyward_serve_verification_duration_seconds_count"] - before["keyward_serve_verification_duration_seconds_count"]; n != 1 {
				t.Errorf("%v verifications, want 1: the server verifies itself", n)
			}
			if name != "no expiry" && after[`keyward_serve_redis_errors_total{op="invalid"}`] < 1 {
				t.Errorf("the invalid value was not counted")
			}
		})
	}
}

// TestRedisUnavailable: a Redis that refuses connections, or accepts them
// and never answers, costs at most its timeout now and then: verdicts stay
// correct (an unsigned artifact denied), the errors are counted.
func TestRedisUnavailable(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "unavailable/signed")
	unsigned, _ := testenv.PushArtifact(t, w.reg, "unavailable/unsigned")
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := refused.Addr().String()
	refused.Close()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // never answered
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	for name, addr := range map[string]string{"refused": refusedAddr, "silent": silent.Addr().String()} {
		t.Run(name, func(t *testing.T) {
			cfg := w.config(w.reg.Host)
			cfg.Cache.Redis = &RedisConfig{Address: addr, Timeout: 100 * time.Millisecond}
			s, err := New(cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			base, _ := serve(t, s)
			start := time.Now()
			got := post(t, http.DefaultClient, base, signed, unsigned)
			if !got[0].Verified || got[1].Verified || got[1].Error == nil || got[1].Error.Kind != verify.ErrorNoSignature {
				t.Errorf("with Redis %s: signed %v, unsigned %v %+v", name, got[0].Verified, got[1].Verified, got[1].Error)
			}
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("with Redis %s the request took %s", name, d)
			}
			m := scrape(t, base)
			if m[`keyward_serve_redis_errors_total{op="get"}`] < 1 {
				t.Errorf("no Redis error counted: %v", m[`keyward_serve_redis_errors_total{op="get"}`])
			}
			// The local cache still answers.
			if r := post(t, http.DefaultClient, base, signed)[0]; !r.Verified {
				t.Errorf("cached: %+v", r.Error)
			}
		})
	}
}

// keywardServe is a keyward serve process.
type keywardServe struct {
	base   string
	cmd    *exec.Cmd
	stderr *lockedWriter
}

// startKeywardServe runs the keyward binary's serve with the configuration
// document cfg (listen is set here) and waits until it is ready.
func startKeywardServe(t *testing.T, w *world, cfg map[string]any) *keywardServe {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg["listen"] = addr
	data, _ := json.Marshal(cfg)
	file := testpki.WriteFile(t, t.TempDir(), "serve.json", data, 0o644)
	cmd := exec.Command(testenv.KeywardBinary(t), "serve", "--config", file)
	cmd.Env = []string{"HOME=" + w.n.Home, "DOCKER_CONFIG=" + t.TempDir()}
	k := &keywardServe{base: "http://" + addr, cmd: cmd, stderr: &lockedWriter{}}
	cmd.Stderr = k.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for range 400 {
		if resp, err := http.Get(k.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("keyward serve never became ready:\n%s", k.stderr.String())
	return nil
}

// lockedWriter lets the test read what the process writes.
type lockedWriter struct {
	mu sync.Mutex
	w  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// String returns what was written so far.
func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// TestRedisSharedByTwoProcesses runs two keyward serve processes on one
// redis-server: a verdict computed by one is served by the other without a
// registry request or a verification; a verified verdict copied under the
// key of an unsigned artifact is not trusted; with Redis stopped, both
// still answer correctly and deny what is unsigned.
func TestRedisSharedByTwoProcesses(t *testing.T) {
	w := newRedisWorld(t)
	signed := w.signed(t, "shared/signed")
	signed2 := w.signed(t, "shared/signed2")
	unsigned, _ := testenv.PushArtifact(t, w.reg, "shared/unsigned")
	unsigned2, _ := testenv.PushArtifact(t, w.reg, "shared/unsigned2")
	copied, _ := testenv.PushArtifact(t, w.reg, "shared/copied")
	password := testpki.WriteFile(t, t.TempDir(), "redis-password", []byte(w.redis.Password+"\n"), 0o600)
	cfg := func() map[string]any {
		return map[string]any{
			"plainHTTP": true,
			"policy":    map[string]any{"trustPolicy": w.policy, "trustStore": w.store},
			"registry":  map[string]any{"plainHTTPHosts": []string{w.reg.Host}},
			"cache": map[string]any{"failureTTL": "1m",
				"redis": map[string]any{"address": w.redis.Address, "passwordFile": password, "keyPrefix": "two:", "timeout": "200ms"}},
			"log": map[string]any{"level": "debug"},
		}
	}
	a := startKeywardServe(t, w.world, cfg())
	b := startKeywardServe(t, w.world, cfg())
	counter := func(m map[string]float64, name string) float64 { return m[name] }
	registryRequests := func(m map[string]float64) float64 {
		return counter(m, `keyward_serve_registry_requests_total{registry="`+w.reg.Host+`"}`)
	}
	const verifications = "keyward_serve_verification_duration_seconds_count"

	// A computes the verdicts of signed, unsigned and copied.
	got := post(t, http.DefaultClient, a.base, signed, unsigned, copied)
	if !got[0].Verified || got[1].Verified || got[2].Verified {
		t.Fatalf("A: %v %v %v", got[0].Verified, got[1].Verified, got[2].Verified)
	}
	keys, err := w.client.Keys(context.Background(), "two:*").Result()
	if err != nil || len(keys) != 3 {
		t.Fatalf("Redis keys %v, %v; want the 3 verdicts", keys, err)
	}
	// Copy the verified verdict of signed over the key of copied: a
	// replay that must not allow it.
	var signedValue, copiedKey string
	for _, k := range keys {
		v, err := w.client.Get(context.Background(), k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var doc redisVerdict
		if err := json.Unmarshal([]byte(v), &doc); err != nil {
			t.Fatalf("Redis value %q: %v", v, err)
		}
		switch doc.Result.Artifact.Digest.String() {
		case signed[strings.Index(signed, "@")+1:]:
			signedValue = v
		case copied[strings.Index(copied, "@")+1:]:
			copiedKey = k
		}
	}
	if signedValue == "" || copiedKey == "" {
		t.Fatal("the verdicts in Redis do not name the artifacts")
	}
	if err := w.client.Set(context.Background(), copiedKey, signedValue, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}

	// B serves signed and unsigned from Redis: no registry request, no
	// verification; copied it verifies itself, and denies.
	b0 := scrape(t, b.base)
	got = post(t, http.DefaultClient, b.base, signed, unsigned)
	if !got[0].Verified || got[1].Verified || got[1].Error == nil || got[1].Error.Kind != verify.ErrorNoSignature {
		t.Errorf("B from Redis: signed %v, unsigned %v %+v", got[0].Verified, got[1].Verified, got[1].Error)
	}
	b1 := scrape(t, b.base)
	if n := registryRequests(b1) - registryRequests(b0); n != 0 {
		t.Errorf("B made %v registry requests for verdicts in Redis, want 0", n)
	}
	if n := counter(b1, verifications) - counter(b0, verifications); n != 0 {
		t.Errorf("B ran %v verifications for verdicts in Redis, want 0", n)
	}
	if n := counter(b1, `keyward_serve_cache_hits_total{layer="redis"}`); n != 2 {
		t.Errorf("B's Redis hits = %v, want 2", n)
	}
	if r := post(t, http.DefaultClient, b.base, copied)[0]; r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorNoSignature {
		t.Errorf("B trusted a verdict copied from another artifact: verified %v, error %+v", r.Verified, r.Error)
	}
	b2 := scrape(t, b.base)
	if n := counter(b2, verifications) - counter(b1, verifications); n != 1 {
		t.Errorf("B ran %v verifications for the copied verdict, want 1", n)
	}
	if counter(b2, `keyward_serve_redis_errors_total{op="invalid"}`) != 1 {
		t.Errorf("the copied verdict was not counted invalid")
	}

	// Redis stops: both still answer, correctly, for what they have
	// cached and for what is new.
	w.redis.Stop()
	for name, k := range map[string]*keywardServe{"A": a, "B": b} {
		got := post(t, http.DefaultClient, k.base, signed, unsigned, signed2, unsigned2, copied)
		for i, want := range []bool{true, false, true, false, false} {
			if got[i].Verified != want {
				t.Errorf("%s with Redis down: %s verified %v, want %v (%+v)", name, got[i].Reference, got[i].Verified, want, got[i].Error)
			}
		}
		if m := scrape(t, k.base); m[`keyward_serve_redis_errors_total{op="get"}`]+m[`keyward_serve_redis_errors_total{op="set"}`] < 1 {
			t.Errorf("%s counted no Redis error with Redis down", name)
		}
	}
	// One warning per outage, JSON lines (the default format), and no
	// password in the log.
	for name, k := range map[string]*keywardServe{"A": a, "B": b} {
		log := k.stderr.String()
		if !strings.Contains(log, `"msg":"redis unavailable: the local cache answers alone"`) {
			t.Errorf("%s logged no Redis warning:\n%s", name, log)
		}
		if !strings.Contains(log, `"msg":"request"`) {
			t.Errorf("%s logged no request line at debug:\n%s", name, log)
		}
		if strings.Contains(log, w.redis.Password) {
			t.Errorf("%s logged the Redis password", name)
		}
	}
}

// TestRedisErrorsNotShared: an error (here a registry that refuses
// connections) is this replica's view and is not written to Redis; a
// failed verdict (unsigned) is.
func TestRedisErrorsNotShared(t *testing.T) {
	w := newRedisWorld(t)
	unsigned, _ := testenv.PushArtifact(t, w.reg, "errors/unsigned")
	down := "127.0.0.1:1/errors/app@sha256:" + strings.Repeat("b", 64)
	s, err := New(w.redisConfig(t, w.reg.Host, "127.0.0.1:1"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	got := post(t, http.DefaultClient, base, unsigned, down)
	if got[0].Verified || got[1].Verified || verdictClass(got[1]) != "error" {
		t.Fatalf("unsigned %+v, down %+v", got[0], got[1])
	}
	ctx := context.Background()
	if n, err := w.client.Exists(ctx, redisKeyOf(t, s, unsigned)).Result(); err != nil || n != 1 {
		t.Errorf("the unsigned verdict is not in Redis: %d, %v", n, err)
	}
	if n, err := w.client.Exists(ctx, redisKeyOf(t, s, down)).Result(); err != nil || n != 0 {
		t.Errorf("the error of an unreachable registry was shared in Redis: %d, %v", n, err)
	}
}

// TestRedisNullSignatureNotTrusted: a verdict in Redis whose signatures
// list holds null is a miss, not a verdict whose readers dereference nil:
// the validating webhook answers (here, denies the unsigned image after
// verifying it itself) instead of the handler panicking.
func TestRedisNullSignatureNotTrusted(t *testing.T) {
	w := newRedisWorld(t)
	unsigned, _ := testenv.PushArtifact(t, w.reg, "null/unsigned")
	s, err := New(w.redisConfig(t, w.reg.Host), Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	ref, _ := reference.Parse(unsigned)
	key := cacheKey(s.table.Load().def, &credentialSet{}, ref.Scope, ref.Digest)
	forged, _ := json.Marshal(redisVerdict{Key: key, Result: &verify.ReferenceResult{Version: verify.ResultVersion, Reference: unsigned,
		Error: &verify.ReferenceError{Kind: verify.ErrorNoSignature, Message: "none"}, Signatures: []*verify.Result{nil}}})
	if err := w.client.Set(context.Background(), redisKeyOf(t, s, unsigned), forged, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	r := postReview(t, base+ValidatePath, review("null", "", "v1", "Pod", "", admissionv1.Create, pod(unsigned), "", false))
	denied(t, r, unsigned, "no-signature")
	if m := scrape(t, base); m[`keyward_serve_redis_errors_total{op="invalid"}`] != 1 {
		t.Errorf("the verdict with a null signature was not counted as invalid")
	}
}
