package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/verify"
)

// Bounds of the shared cache.
const (
	// maxRedisValue bounds a verdict read from Redis: a larger one is not
	// read past the bound and is a miss.
	maxRedisValue = 256 << 10
	// redisBackoff is how long Redis is left alone after a command failed:
	// a Redis down or slow costs one timeout a while, not one per request.
	redisBackoff = time.Second
	// maxPasswordFile bounds cache.redis.passwordFile.
	maxPasswordFile = 64 << 10
)

// redisCache is the verdict store shared by the replicas of a server, in
// Redis: each verdict is a JSON document {"key": cache key, "result":
// verify-result.schema.json object} under keyPrefix + hex(sha256(cache
// key)), expiring with the verdict's TTL. Whatever goes wrong (Redis down,
// slow, refusing, a value that does not check) is a miss, logged and
// counted: the local cache and the verification answer alone, and nothing
// read from Redis is trusted before it is checked.
type redisCache struct {
	client  *redis.Client
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	metrics *Metrics

	down      atomic.Bool  // the last command failed
	downUntil atomic.Int64 // unix nanoseconds: no command before
}

var _ sharedStore = (*redisCache)(nil)

// newRedisCache connects lazily to the Redis of cfg; it fails only when the
// password file cannot be read.
func newRedisCache(cfg *RedisConfig, log *slog.Logger, m *Metrics) (*redisCache, error) {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	opts := &redis.Options{
		Addr:            cfg.Address,
		DB:              cfg.DB,
		DialTimeout:     timeout,
		ReadTimeout:     timeout,
		WriteTimeout:    timeout,
		PoolTimeout:     timeout,
		MaxRetries:      -1, // a failure is a miss at once: the timeout is the budget
		DialerRetries:   1,
		DisableIdentity: true,
		// RESP2, and no maintenance notifications: no push messages, no
		// handoff workers, only commands and their answers.
		Protocol:                 2,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if cfg.PasswordFile != "" {
		data, err := bounded.ReadFile(cfg.PasswordFile, maxPasswordFile, "cache.redis.passwordFile "+cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("cache.redis.passwordFile: %w", err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		opts.Password = strings.TrimRight(line, "\r")
		if opts.Password == "" {
			return nil, fmt.Errorf("cache.redis.passwordFile %s is empty: write the Redis password on its first line, or remove passwordFile", cfg.PasswordFile)
		}
	}
	return &redisCache{client: redis.NewClient(opts), prefix: cfg.KeyPrefix, timeout: timeout, log: log, metrics: m}, nil
}

// redisKey is where the verdict of a cache key lives.
func (c *redisCache) redisKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return c.prefix + hex.EncodeToString(sum[:])
}

// redisVerdict is the document stored.
type redisVerdict struct {
	Key    string                  `json:"key"`
	Result *verify.ReferenceResult `json:"result"`
}

// available reports whether a command may be sent: not within the backoff
// after a failure.
func (c *redisCache) available() bool {
	return time.Now().UnixNano() >= c.downUntil.Load()
}

// failed counts, backs off and (once per outage) logs a failed command.
func (c *redisCache) failed(op string, err error) {
	c.metrics.redisError(op)
	c.downUntil.Store(time.Now().Add(redisBackoff).UnixNano())
	if !c.down.Swap(true) {
		c.log.Warn("redis unavailable: the local cache answers alone", "op", op, "error", err.Error())
	}
}

// ok notes a command that succeeded.
func (c *redisCache) ok() {
	if c.down.Swap(false) {
		c.log.Info("redis available again")
	}
}

func (c *redisCache) get(ctx context.Context, key string) (*verify.ReferenceResult, time.Duration, bool) {
	if !c.available() {
		return nil, 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	rk := c.redisKey(key)
	var value *redis.StringCmd
	var left *redis.DurationCmd
	_, err := c.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		// GETRANGE reads at most maxRedisValue+1 bytes, whatever is stored.
		value = p.GetRange(ctx, rk, 0, maxRedisValue)
		left = p.PTTL(ctx, rk)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		c.failed("get", err)
		return nil, 0, false
	}
	c.ok()
	data := value.Val()
	if data == "" {
		return nil, 0, false // no such key
	}
	r, err := checkRedisVerdict(key, []byte(data))
	if err != nil {
		c.metrics.redisError("invalid")
		c.log.Warn("redis holds a verdict that does not check: ignored", "redisKey", rk, "error", err.Error())
		return nil, 0, false
	}
	ttl := left.Val()
	if ttl <= 0 {
		// No expiry, or expired meanwhile: a verdict must expire.
		return nil, 0, false
	}
	return r, ttl, true
}

// checkRedisVerdict decodes and checks a verdict read from Redis: a
// bounded, well-formed document for this very key, whose result is one a
// verification of that artifact can give.
func checkRedisVerdict(key string, data []byte) (*verify.ReferenceResult, error) {
	if len(data) > maxRedisValue {
		return nil, fmt.Errorf("%d bytes or more, more than the %d allowed", len(data), maxRedisValue)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var v redisVerdict
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not a verdict document: %w", err)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON value")
	}
	r := v.Result
	switch {
	case v.Key != key:
		return nil, errors.New("stored for another cache key")
	case r == nil:
		return nil, errors.New("no result")
	case r.Version != verify.ResultVersion:
		return nil, fmt.Errorf("result version %q, not %q", r.Version, verify.ResultVersion)
	case r.Skipped:
		return nil, errors.New("a skipped result, which is never cached")
	case r.Verified && r.Error != nil:
		return nil, errors.New("verified with an error")
	case !r.Verified && (r.Error == nil || r.Error.Kind == ""):
		return nil, errors.New("not verified and no error")
	case r.Verified && (r.Artifact == nil || !hasField(key, r.Artifact.Digest.String())):
		return nil, errors.New("verified, but not for the artifact of the key")
	}
	for _, s := range r.Signatures {
		if s == nil {
			// Every reader of a verdict (the deny message, warnings,
			// Gatekeeper's verifier reports) reads each signature.
			return nil, errors.New("a null signature")
		}
	}
	if r.Signatures == nil {
		r.Signatures = []*verify.Result{}
	}
	return r, nil
}

// hasField reports whether the cache key holds s as one of its fields.
func hasField(key, s string) bool {
	for _, f := range strings.Split(key, "\x00") {
		if f == s {
			return true
		}
	}
	return false
}

func (c *redisCache) set(ctx context.Context, key string, r *verify.ReferenceResult, ttl time.Duration) {
	if !c.available() {
		return
	}
	data, err := json.Marshal(redisVerdict{Key: key, Result: r})
	if err != nil || len(data) > maxRedisValue {
		return // too large to share: kept locally only
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := c.client.Set(ctx, c.redisKey(key), data, ttl).Err(); err != nil {
		c.failed("set", err)
		return
	}
	c.ok()
}

// close closes the connections.
func (c *redisCache) close() error { return c.client.Close() }

// RouteRedisLog sends the Redis client library's own messages (connection
// pool failures) to log at debug level instead of its default logger,
// which writes plain lines to standard error. The library's logger is
// process-wide: keyward serve's command calls this once, at start.
func RouteRedisLog(log *slog.Logger) { redis.SetLogger(redisLog{log}) }

// redisLog adapts a slog.Logger to the Redis client's logger interface.
type redisLog struct{ log *slog.Logger }

// Printf logs one message of the Redis client.
func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
