package serve

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/jsonpos"
)

// ConfigSchemaID is the $id of serve-config.schema.json; the schema is
// embedded, never fetched.
const ConfigSchemaID = "https://raw.githubusercontent.com/keyward/keyward/main/serve-config.schema.json"

// Defaults of the configuration.
const (
	// DefaultRequestTimeout is timeouts.request: below the 10s default
	// timeoutSeconds of a Kubernetes admission webhook.
	DefaultRequestTimeout = 8 * time.Second
	// DefaultRegistryRequestTimeout is timeouts.registryRequest.
	DefaultRegistryRequestTimeout = 5 * time.Second
	// DefaultTTL is cache.ttl, DefaultFailureTTL cache.failureTTL.
	DefaultTTL        = 5 * time.Minute
	DefaultFailureTTL = 10 * time.Second
	// DefaultMaxEntries is cache.maxEntries.
	DefaultMaxEntries = 10000
	// DefaultReloadInterval is reload.interval.
	DefaultReloadInterval = 10 * time.Second
	// DefaultSetName is the name of the default policy set (policy) in
	// logs and reload errors.
	DefaultSetName = "default"
	// DefaultMaxBytes is cache.maxBytes: half for verdicts, half for
	// signatures.
	DefaultMaxBytes = 128 << 20
	// DefaultResolutionTTL is cache.resolutionTTL.
	DefaultResolutionTTL = 30 * time.Second
	// DefaultRedisTimeout is cache.redis.timeout, DefaultRedisKeyPrefix
	// cache.redis.keyPrefix.
	DefaultRedisTimeout   = 100 * time.Millisecond
	DefaultRedisKeyPrefix = "keyward:verdict:"
	// MaxWebhookTimeout is the largest timeoutSeconds Kubernetes accepts
	// for an admission webhook (k8s.io/api admissionregistration/v1
	// types.go, ValidatingWebhook.TimeoutSeconds: "between 1 and 30
	// seconds"); timeouts.request must stay below it.
	MaxWebhookTimeout = 30 * time.Second
	// maxConfigFile bounds the configuration file.
	maxConfigFile = 1 << 20
	// MaxPasswordFile bounds a registry.credentials passwordFile.
	MaxPasswordFile = 64 << 10
)

// Config is the keyward serve configuration (serve-config.schema.json).
// Paths are absolute once loaded by [LoadConfig].
type Config struct {
	// File is the configuration file it was loaded from ("" when built by
	// hand): the server polls it for changed policy sets.
	File string
	// Listen is host:port.
	Listen string
	// TLS is the server certificate; nil with PlainHTTP.
	TLS *TLSConfig
	// PlainHTTP serves plain HTTP (local use only).
	PlainHTTP bool
	// Policy is the default policy set.
	Policy PolicySet
	// PolicySets are the per-namespace policy sets, first match first.
	PolicySets []NamedPolicySet
	// Reload configures the polling of the policy files.
	Reload ReloadConfig
	// Kubernetes says how the Kubernetes API is reached.
	Kubernetes KubernetesConfig
	// Registry says how registries are reached.
	Registry RegistryConfig
	// RequestTimeout bounds one API request; RegistryRequestTimeout one
	// registry request.
	RequestTimeout, RegistryRequestTimeout time.Duration
	// Cache configures the verdict cache.
	Cache CacheConfig
	// Webhooks says which admission webhooks are served; Gatekeeper
	// whether the Gatekeeper external-data provider is. The zero values
	// serve all, as the configuration file's defaults do.
	Webhooks   WebhooksConfig
	Gatekeeper GatekeeperConfig
	// Log configures the server's log (used by keyward serve's command).
	Log LogConfig
}

// WebhooksConfig switches the Kubernetes admission webhooks off
// (webhooks.validating: false, webhooks.mutating: false).
type WebhooksConfig struct {
	// DisableValidating stops serving POST /v1/admission/validate.
	DisableValidating bool
	// DisableMutating stops serving POST /v1/admission/mutate.
	DisableMutating bool
}

// GatekeeperConfig switches the Gatekeeper provider off
// (gatekeeper.enabled: false).
type GatekeeperConfig struct {
	// Disable stops serving POST /v1/gatekeeper/verify.
	Disable bool
}

// LogConfig is the log's format ("json" or "text") and least level
// ("debug", "info", "warn", "error"); empty means json and info.
type LogConfig struct {
	Format string `json:"format"`
	Level  string `json:"level"`
}

// TLSConfig names the PEM files of the server certificate and key.
type TLSConfig struct {
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// PolicySet is a trust policy file and the trust store it names.
type PolicySet struct {
	TrustPolicy string `json:"trustPolicy"`
	TrustStore  string `json:"trustStore"`
}

// NamedPolicySet is a policy set of policySets and the namespaces it
// applies to: those listed, and those whose labels the selector matches.
type NamedPolicySet struct {
	Name              string         `json:"name"`
	Namespaces        []string       `json:"namespaces"`
	NamespaceSelector *LabelSelector `json:"namespaceSelector"`
	PolicySet
}

// LabelSelector is a Kubernetes label selector (metav1.LabelSelector):
// every MatchLabels entry and every MatchExpressions requirement holds.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions"`
}

// LabelSelectorRequirement is one requirement of a [LabelSelector]:
// Operator is In, NotIn, Exists or DoesNotExist.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

// Selector compiles the selector with Kubernetes' own rules
// (k8s.io/apimachinery metav1.LabelSelectorAsSelector).
func (s *LabelSelector) Selector() (labels.Selector, error) {
	ls := &metav1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, r := range s.MatchExpressions {
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: r.Key, Operator: metav1.LabelSelectorOperator(r.Operator), Values: r.Values})
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// ReloadConfig configures hot reload.
type ReloadConfig struct {
	// Interval is how often the policy files are checked.
	Interval time.Duration
}

// KubernetesConfig says how the Kubernetes API is reached.
type KubernetesConfig struct {
	// Kubeconfig is a kubeconfig file; "" means the in-cluster
	// configuration.
	Kubeconfig string `json:"kubeconfig"`
	// PullSecrets makes the pod's imagePullSecrets registry credentials.
	PullSecrets bool `json:"pullSecrets"`
}

// RegistryCredential is a user name and the file of its password for one
// registry.
type RegistryCredential struct {
	Registry     string `json:"registry"`
	Username     string `json:"username"`
	PasswordFile string `json:"passwordFile"`
}

// RegistryConfig says how registries are reached.
type RegistryConfig struct {
	// PlainHTTPHosts are reached over plain HTTP.
	PlainHTTPHosts []string `json:"plainHTTPHosts"`
	// CAFile holds extra CA certificates for registry TLS.
	CAFile string `json:"caFile"`
	// DockerConfig is the folder of the docker config.json.
	DockerConfig string `json:"dockerConfig"`
	// Credentials are per-registry credentials.
	Credentials []RegistryCredential `json:"credentials"`
}

// CacheConfig configures the caches.
type CacheConfig struct {
	// TTL keeps verified verdicts, FailureTTL failed ones (0: none).
	TTL, FailureTTL time.Duration
	// MaxEntries bounds the verdicts kept.
	MaxEntries int
	// MaxBytes bounds the caches' memory: half for verdicts (estimated),
	// half for signatures (0: DefaultMaxBytes).
	MaxBytes int64
	// ResolutionTTL keeps a tag's resolution (0: resolved on every
	// request).
	ResolutionTTL time.Duration
	// Redis is the shared cache; nil means none.
	Redis *RedisConfig
}

// RedisConfig says how the shared verdict cache in Redis is reached.
type RedisConfig struct {
	// Address is host:port.
	Address string
	// PasswordFile holds the AUTH password; empty means none.
	PasswordFile string
	// DB is the database number.
	DB int
	// KeyPrefix starts every key (empty: DefaultRedisKeyPrefix).
	KeyPrefix string
	// Timeout bounds one command (0: DefaultRedisTimeout).
	Timeout time.Duration
}

// fileConfig is the document as written: durations are strings.
type fileConfig struct {
	Listen     string           `json:"listen"`
	TLS        *TLSConfig       `json:"tls"`
	PlainHTTP  bool             `json:"plainHTTP"`
	Policy     PolicySet        `json:"policy"`
	PolicySets []NamedPolicySet `json:"policySets"`
	Reload     struct {
		Interval string `json:"interval"`
	} `json:"reload"`
	Kubernetes KubernetesConfig `json:"kubernetes"`
	Registry   RegistryConfig   `json:"registry"`
	Timeouts   struct {
		Request         string `json:"request"`
		RegistryRequest string `json:"registryRequest"`
	} `json:"timeouts"`
	Cache struct {
		TTL           string `json:"ttl"`
		FailureTTL    string `json:"failureTTL"`
		MaxEntries    int    `json:"maxEntries"`
		MaxBytes      int64  `json:"maxBytes"`
		ResolutionTTL string `json:"resolutionTTL"`
		Redis         *struct {
			Address      string  `json:"address"`
			PasswordFile string  `json:"passwordFile"`
			DB           int     `json:"db"`
			KeyPrefix    *string `json:"keyPrefix"`
			Timeout      string  `json:"timeout"`
		} `json:"redis"`
	} `json:"cache"`
	Webhooks struct {
		Validating *bool `json:"validating"`
		Mutating   *bool `json:"mutating"`
	} `json:"webhooks"`
	Gatekeeper struct {
		Enabled *bool `json:"enabled"`
	} `json:"gatekeeper"`
	Log LogConfig `json:"log"`
}

var configSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		return nil, fmt.Errorf("keyward does not load schemas from the network (%s)", u)
	}
	if err := c.AddResource(ConfigSchemaID, bytes.NewReader(keyward.ServeConfigSchema())); err != nil {
		return nil, err
	}
	return c.Compile(ConfigSchemaID)
})

// LoadConfig reads and validates a configuration file, YAML or JSON. A
// file that does not match serve-config.schema.json, or whose values do
// not go together, is a *[ConfigError] naming each problem's JSON pointer,
// line and column.
func LoadConfig(path string) (*Config, error) {
	data, err := bounded.ReadFile(path, maxConfigFile, "configuration file "+path)
	if err != nil {
		return nil, fmt.Errorf("read the configuration: %w", err)
	}
	cfg, err := ParseConfig(path, data)
	if err != nil {
		return nil, err
	}
	// The file is watched for policy set changes (reload).
	if abs, err := filepath.Abs(path); err == nil {
		cfg.File = abs
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// ParseConfig validates data, the configuration read from file (named in
// errors, and the base of relative paths).
func ParseConfig(file string, data []byte) (*Config, error) {
	cerr := &ConfigError{File: file}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		p := ConfigProblem{Message: err.Error(), Fix: "write YAML or JSON"}
		if m := yamlLine.FindStringSubmatch(p.Message); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Message = strings.TrimPrefix(p.Message, m[0])
		}
		cerr.Problems = append(cerr.Problems, p)
		return nil, cerr
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if root.Kind == 0 {
		cerr.Problems = append(cerr.Problems, ConfigProblem{Message: "the file is empty", Fix: "give at least listen, tls or plainHTTP, and policy"})
		return nil, cerr
	}
	value, err := toJSON(doc, "")
	if err != nil {
		var p *ConfigProblem
		if errors.As(err, &p) {
			cerr.Problems = append(cerr.Problems, *p)
			return nil, cerr
		}
		return nil, err
	}
	schema, err := configSchema()
	if err != nil {
		return nil, fmt.Errorf("compile the embedded serve-config.schema.json: %w", err)
	}
	if err := schema.Validate(value); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return nil, fmt.Errorf("validate %s: %w", file, err)
		}
		for _, leaf := range leaves(ve) {
			cerr.Problems = append(cerr.Problems, schemaProblems(doc, leaf)...)
		}
		sortProblems(cerr.Problems)
		return nil, cerr
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("re-encode %s: %w", file, err)
	}
	var fc fileConfig
	if err := json.Unmarshal(raw, &fc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", file, err)
	}
	cfg, problems := fc.resolve(doc, filepath.Dir(file))
	if len(problems) > 0 {
		sortProblems(problems)
		cerr.Problems = problems
		return nil, cerr
	}
	return cfg, nil
}

// resolve applies defaults, parses durations, checks what the schema
// cannot say, and makes paths absolute.
func (fc *fileConfig) resolve(doc *yaml.Node, dir string) (*Config, []ConfigProblem) {
	var problems []ConfigProblem
	add := func(ptr, msg, fix string) {
		p := ConfigProblem{Pointer: ptr, Message: msg, Fix: fix}
		p.Line, p.Column = position(doc, ptr)
		problems = append(problems, p)
	}
	cfg := &Config{
		Listen:                 fc.Listen,
		TLS:                    fc.TLS,
		PlainHTTP:              fc.PlainHTTP,
		Policy:                 fc.Policy,
		PolicySets:             fc.PolicySets,
		Reload:                 ReloadConfig{Interval: DefaultReloadInterval},
		Kubernetes:             fc.Kubernetes,
		Registry:               fc.Registry,
		RequestTimeout:         DefaultRequestTimeout,
		RegistryRequestTimeout: DefaultRegistryRequestTimeout,
		Cache: CacheConfig{TTL: DefaultTTL, FailureTTL: DefaultFailureTTL, MaxEntries: DefaultMaxEntries,
			MaxBytes: DefaultMaxBytes, ResolutionTTL: DefaultResolutionTTL},
		Log: fc.Log,
		Webhooks: WebhooksConfig{
			DisableValidating: fc.Webhooks.Validating != nil && !*fc.Webhooks.Validating,
			DisableMutating:   fc.Webhooks.Mutating != nil && !*fc.Webhooks.Mutating,
		},
		Gatekeeper: GatekeeperConfig{Disable: fc.Gatekeeper.Enabled != nil && !*fc.Gatekeeper.Enabled},
	}
	switch {
	case fc.TLS == nil && !fc.PlainHTTP:
		add("", "neither tls nor plainHTTP: true is set", "give tls {certFile, keyFile}; plainHTTP: true serves without TLS, for local use only")
	case fc.TLS != nil && fc.PlainHTTP:
		add("/plainHTTP", "plainHTTP: true and tls are both set", "remove one: tls serves HTTPS, plainHTTP serves plain HTTP")
	}
	duration := func(ptr, s string, allowZero bool, into *time.Duration) {
		if s == "" {
			return
		}
		d, err := time.ParseDuration(s)
		switch {
		case err != nil:
			add(ptr, fmt.Sprintf("%q is not a duration: %v", s, err), "write a Go duration such as 8s, 500ms or 1m30s")
		case d == 0 && !allowZero:
			add(ptr, fmt.Sprintf("%q is zero", s), "give a duration greater than 0")
		default:
			*into = d
		}
	}
	duration("/timeouts/request", fc.Timeouts.Request, false, &cfg.RequestTimeout)
	duration("/timeouts/registryRequest", fc.Timeouts.RegistryRequest, false, &cfg.RegistryRequestTimeout)
	duration("/cache/ttl", fc.Cache.TTL, true, &cfg.Cache.TTL)
	duration("/cache/failureTTL", fc.Cache.FailureTTL, true, &cfg.Cache.FailureTTL)
	duration("/reload/interval", fc.Reload.Interval, false, &cfg.Reload.Interval)
	duration("/cache/resolutionTTL", fc.Cache.ResolutionTTL, true, &cfg.Cache.ResolutionTTL)
	if fc.Cache.MaxBytes > 0 {
		cfg.Cache.MaxBytes = fc.Cache.MaxBytes
	}
	if r := fc.Cache.Redis; r != nil {
		rc := &RedisConfig{Address: r.Address, PasswordFile: r.PasswordFile, DB: r.DB, KeyPrefix: DefaultRedisKeyPrefix, Timeout: DefaultRedisTimeout}
		if r.KeyPrefix != nil {
			rc.KeyPrefix = *r.KeyPrefix
		}
		duration("/cache/redis/timeout", r.Timeout, false, &rc.Timeout)
		if _, _, err := net.SplitHostPort(r.Address); err != nil {
			add("/cache/redis/address", fmt.Sprintf("%q is not host:port", r.Address), "give the Redis server's address, e.g. redis.keyward.svc:6379")
		}
		cfg.Cache.Redis = rc
	}
	if cfg.RequestTimeout >= MaxWebhookTimeout {
		add("/timeouts/request", fmt.Sprintf("%s is not below %s, the longest timeoutSeconds of a Kubernetes admission webhook", cfg.RequestTimeout, MaxWebhookTimeout),
			"give a timeout below the webhook's timeoutSeconds, e.g. 8s for the default 10")
	}
	if fc.Cache.MaxEntries > 0 {
		cfg.Cache.MaxEntries = fc.Cache.MaxEntries
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	if cfg.TLS != nil {
		abs(&cfg.TLS.CertFile)
		abs(&cfg.TLS.KeyFile)
	}
	abs(&cfg.Policy.TrustPolicy)
	abs(&cfg.Policy.TrustStore)
	abs(&cfg.Registry.CAFile)
	abs(&cfg.Registry.DockerConfig)
	abs(&cfg.Kubernetes.Kubeconfig)
	for i := range cfg.PolicySets {
		abs(&cfg.PolicySets[i].TrustPolicy)
		abs(&cfg.PolicySets[i].TrustStore)
	}
	for i := range cfg.Registry.Credentials {
		abs(&cfg.Registry.Credentials[i].PasswordFile)
	}
	checkPolicySets(cfg.PolicySets, add)
	checkCredentials(cfg.Registry.Credentials, add)
	if cfg.Cache.Redis != nil {
		abs(&cfg.Cache.Redis.PasswordFile)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return cfg, nil
}

// toJSON converts a YAML node to the values encoding/json produces, so that
// the schema judges YAML and JSON alike. Anchors and aliases are refused.
func toJSON(n *yaml.Node, ptr string) (any, error) {
	bad := func(msg, fix string) error {
		return &ConfigProblem{Pointer: ptr, Line: n.Line, Column: n.Column, Message: msg, Fix: fix}
	}
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return nil, bad("YAML anchors and aliases are not supported", "write the value out")
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || (k.Tag != "!!str" && k.Tag != "!!int" && k.Tag != "!!bool" && k.Tag != "!!float") {
				return nil, (&ConfigProblem{Pointer: ptr, Line: k.Line, Column: k.Column, Message: "a key is not a string", Fix: "use string keys, as JSON does"})
			}
			cv, err := toJSON(v, jsonpos.Join(ptr, k.Value))
			if err != nil {
				return nil, err
			}
			m[k.Value] = cv
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			cv, err := toJSON(c, jsonpos.Join(ptr, strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			s = append(s, cv)
		}
		return s, nil
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, nil
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				return nil, bad(err.Error(), "write true or false")
			}
			return b, nil
		case "!!int", "!!float":
			var f float64
			if err := n.Decode(&f); err != nil {
				return nil, bad(err.Error(), "write a decimal number")
			}
			return json.Number(strconv.FormatFloat(f, 'f', -1, 64)), nil
		case "!!str":
			return n.Value, nil
		}
		return nil, bad(fmt.Sprintf("values tagged %s are not supported", n.Tag), "write a string, number, boolean or null")
	}
	return nil, bad("unsupported YAML node", "write JSON-compatible YAML")
}

// Error makes a problem found while converting an error value.
func (p *ConfigProblem) Error() string { return p.String("") }

// leaves returns the failed keywords that caused no others.
func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	var out []*jsonschema.ValidationError
	for _, c := range ve.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

var quoted = regexp.MustCompile(`'([^']*)'`)

// schemaProblems describes one failed schema keyword; an
// additionalProperties failure gives one problem per unknown key, located
// at the key.
func schemaProblems(doc *yaml.Node, ve *jsonschema.ValidationError) []ConfigProblem {
	kw := ve.KeywordLocation[strings.LastIndex(ve.KeywordLocation, "/")+1:]
	ptr := ve.InstanceLocation
	switch kw {
	case "additionalProperties":
		var out []ConfigProblem
		for _, m := range quoted.FindAllStringSubmatch(ve.Message, -1) {
			p := ConfigProblem{Pointer: jsonpos.Join(ptr, m[1]), Message: fmt.Sprintf("unknown field %q", m[1]),
				Fix: "remove it or correct its spelling; the fields are those of serve-config.schema.json"}
			p.Line, p.Column = keyPosition(doc, ptr, m[1])
			out = append(out, p)
		}
		if len(out) > 0 {
			return out
		}
	case "required":
		p := ConfigProblem{Pointer: ptr, Message: ve.Message, Fix: "add the missing field (see serve-config.schema.json)"}
		p.Line, p.Column = position(doc, ptr)
		return []ConfigProblem{p}
	}
	fix := "see the description of " + displayPointer(ptr) + " in serve-config.schema.json"
	msg := ve.Message
	switch kw {
	case "pattern":
		// The only pattern of the schema is $defs/duration.
		if n := lookup(doc, ptr); n != nil {
			msg = fmt.Sprintf("%q is not a duration", n.Value)
		}
		fix = "write a Go duration such as 8s, 500ms or 1m30s"
	case "type":
		fix = "give a value of the type the schema names"
	}
	p := ConfigProblem{Pointer: ptr, Message: msg, Fix: fix}
	p.Line, p.Column = position(doc, ptr)
	return []ConfigProblem{p}
}

func displayPointer(p string) string {
	if p == "" {
		return "the document"
	}
	return p
}

// lookup returns the YAML node at a JSON pointer, or nil.
func lookup(doc *yaml.Node, ptr string) *yaml.Node {
	n := doc
	for _, tok := range jsonpos.Tokens(ptr) {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == tok {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return nil
			}
			n = next
		case yaml.SequenceNode:
			i, ok := jsonpos.ArrayIndex(tok, len(n.Content))
			if !ok {
				return nil
			}
			n = n.Content[i]
		default:
			return nil
		}
	}
	return n
}

// position is the line and column of the value at ptr; 0, 0 when the value
// is absent.
func position(doc *yaml.Node, ptr string) (int, int) {
	if n := lookup(doc, ptr); n != nil {
		return n.Line, n.Column
	}
	return 0, 0
}

// keyPosition is the line and column of key in the object at ptr.
func keyPosition(doc *yaml.Node, ptr, key string) (int, int) {
	n := lookup(doc, ptr)
	if n == nil || n.Kind != yaml.MappingNode {
		return 0, 0
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i].Line, n.Content[i].Column
		}
	}
	return n.Line, n.Column
}

func sortProblems(ps []ConfigProblem) {
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].Line != ps[j].Line {
			return ps[i].Line < ps[j].Line
		}
		return ps[i].Column < ps[j].Column
	})
}
