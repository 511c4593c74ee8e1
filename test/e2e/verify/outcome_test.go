package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	keyward "github.com/keyward/keyward"
)

// Names of what failed, in notation's words: the verification types of the
// trust policy (integrity, authenticity, authenticTimestamp, expiry,
// revocation) and the steps notation reports without a type.
const (
	failIntegrity          = "integrity"
	failAuthenticity       = "authenticity"
	failAuthenticTimestamp = "authenticTimestamp"
	failExpiry             = "expiry"
	failRevocation         = "revocation"
	failTargetArtifact     = "targetArtifact"     // "content descriptor mismatch"
	failPluginDiscovery    = "pluginDiscovery"    // the verification plugin cannot be used
	failPluginVerification = "pluginVerification" // the plugin's verify-signature failed
	failUserMetadata       = "userMetadata"
	failNoSignature        = "noSignature" // "no signature is associated with"
	failUnknown            = "unknown"
)

// verdict is what one verifier concluded about one artifact.
type verdict struct {
	passed  bool
	skipped bool
	failed  string   // what failed (fail* constant); "" when passed
	reason  string   // notation's failure reason, or keyward's message of the failed check
	warned  []string // verification types that failed with action log, sorted
}

func (v verdict) String() string {
	switch {
	case v.skipped:
		return "skip"
	case v.passed && len(v.warned) > 0:
		return "pass(log:" + strings.Join(v.warned, ",") + ")"
	case v.passed:
		return "pass"
	}
	return "FAIL:" + v.failed
}

var (
	// notation-go logs an enforced failure as "<type> validation failed.
	// Failure reason: <error>" (verifier.logVerificationResult).
	enforcedRE = regexp.MustCompile(`msg=(\w+) validation failed\. Failure reason: (.*)`)
	// notation verify prints each logged failure of a passing signature
	// (cmd/notation/verify.go).
	warningRE = regexp.MustCompile(`Warning: (\w+) was set to "log" and failed with error: `)
	// notation.Verify logs why a signature failed.
	signatureFailedRE = regexp.MustCompile(`Signature sha256:[0-9a-f]+ failed verification with error: (.*)`)
)

// notationVerdict reads notation verify -v's exit status and output.
func notationVerdict(ok bool, out string) verdict {
	var v verdict
	for _, m := range warningRE.FindAllStringSubmatch(out, -1) {
		v.warned = append(v.warned, m[1])
	}
	sort.Strings(v.warned)
	if ok {
		v.passed = true
		v.skipped = strings.Contains(out, "Trust policy is configured to skip signature verification")
		return v
	}
	if m := enforcedRE.FindStringSubmatch(out); m != nil {
		v.failed, v.reason = m[1], strings.TrimSpace(m[2])
		return v
	}
	if m := signatureFailedRE.FindStringSubmatch(out); m != nil {
		v.reason = strings.TrimSpace(m[1])
	}
	switch {
	case strings.Contains(out, "content descriptor mismatch"):
		v.failed = failTargetArtifact
	case strings.Contains(out, "no signature is associated with"):
		v.failed = failNoSignature
	case strings.Contains(out, "error while locating the verification plugin"),
		strings.Contains(out, "digital signature requires plugin"),
		strings.Contains(out, "which is not in valid semver format"),
		strings.Contains(out, "signature verification needs plugin version"),
		strings.Contains(out, "error while getting plugin minimum version"):
		v.failed = failPluginDiscovery
	case strings.Contains(out, "failed to verify with plugin"),
		strings.Contains(out, "was not processed by the verification plugin"):
		v.failed = failPluginVerification
	case strings.Contains(out, "unable to find specified metadata"):
		v.failed = failUserMetadata
	default:
		v.failed = failUnknown
	}
	return v
}

// keywardLine is the part of a keyward verify --output json line that the
// corpus compares (verify-result.schema.json).
type keywardLine struct {
	Reference  string `json:"reference"`
	Verified   bool   `json:"verified"`
	Skipped    bool   `json:"skipped"`
	Signatures []struct {
		Passed      bool   `json:"passed"`
		FailedCheck string `json:"failedCheck"`
		Checks      []struct {
			Check   string `json:"check"`
			Action  string `json:"action"`
			Outcome string `json:"outcome"`
			Message string `json:"message"`
		} `json:"checks"`
	} `json:"signatures"`
	Error *struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
	} `json:"error"`
}

// notationType names a keyward check as notation's verification results do:
// the trusted identity is part of authenticity.
func notationType(check string) string {
	if check == "trustedIdentity" {
		return failAuthenticity
	}
	return check
}

// keywardVerdict reads one keyward result line.
func keywardVerdict(l keywardLine) verdict {
	v := verdict{passed: l.Verified, skipped: l.Skipped}
	if len(l.Signatures) > 0 {
		s := l.Signatures[len(l.Signatures)-1]
		for _, c := range s.Checks {
			if c.Outcome == "failed" && c.Action == "log" {
				v.warned = append(v.warned, notationType(c.Check))
			}
			if !s.Passed && c.Check == s.FailedCheck {
				v.reason = c.Message
			}
		}
		sort.Strings(v.warned)
		v.warned = compact(v.warned)
		if !s.Passed {
			v.failed = notationType(s.FailedCheck)
		}
	}
	if !v.passed && v.failed == "" {
		v.failed = failUnknown
		if l.Error != nil && l.Error.Kind == "no-signature" {
			v.failed = failNoSignature
		}
	}
	return v
}

func compact(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// resultSchema compiles verify-result.schema.json, the result schema the
// repository publishes (and keyward verify --print-schema prints).
func resultSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		c.AssertFormat = true
		if schemaErr = c.AddResource("verify-result.schema.json", bytes.NewReader(keyward.VerifyResultSchema())); schemaErr == nil {
			schema, schemaErr = c.Compile("verify-result.schema.json")
		}
	})
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	return schema
}

// decodeLines validates every line of keyward verify --output json against
// the published schema and decodes it.
func decodeLines(t testing.TB, out string) ([]keywardLine, error) {
	t.Helper()
	s := resultSchema(t)
	var lines []keywardLine
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			return nil, fmt.Errorf("line is not JSON: %v\n%s", err, line)
		}
		if err := s.Validate(v); err != nil {
			return nil, fmt.Errorf("line does not match verify-result.schema.json: %v\n%s", err, line)
		}
		var l keywardLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			return nil, err
		}
		lines = append(lines, l)
	}
	return lines, nil
}
