package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// RatifyVerifyPath is the Gatekeeper external data provider endpoint of
// `ratify serve` v1.4.0 (httpserver.ServerRootURL + "/verify").
const RatifyVerifyPath = "/ratify/gatekeeper/v1/verify"

// ratifyStartTimeout bounds how long `ratify serve` may take to answer:
// it loads its plugins and the notation verifier first, which takes a
// moment on a loaded machine.
const ratifyStartTimeout = 60 * time.Second

// RatifyOptions configure [StartRatify].
type RatifyOptions struct {
	// TrustPolicy is a notation trust policy document (trustpolicy.json),
	// given to Ratify's notation verifier as trustPolicyDoc.
	TrustPolicy []byte
	// Certs are PEM files or folders of the certificates the trust
	// policy's trust stores stand for (the verifier's verificationCerts).
	// Ratify v1.4.0 reads every one of them for every trust store the
	// policy names.
	Certs []string
	// PlainHTTP makes the ORAS store reach registries over plain HTTP
	// (useHttp), as registries on 127.0.0.1 in testenv serve.
	PlainHTTP bool
	// CacheTTL, when above zero, turns on Ratify's verdict cache
	// (--cache-enabled --cache-ttl); zero leaves it off, Ratify's default.
	CacheTTL time.Duration
	// VerifyTimeout is executor.verificationRequestTimeout; zero keeps
	// Ratify's default (2.9 s, under Gatekeeper's 3 s).
	VerifyTimeout time.Duration
}

// Ratify is a `ratify serve --http` v1.4.0 process on 127.0.0.1, standalone
// (no Kubernetes: its configuration is a config.json), stopped when the
// test that started it ends.
type Ratify struct {
	// URL is the base URL, http://127.0.0.1:port.
	URL string
	// Log is the file holding the process's stdout and stderr.
	Log string
	// Config is the config.json Ratify was started with.
	Config string

	proc *Registry // the process (startProcess's handle)
}

// StartRatify starts `ratify serve` (built by scripts/tools-ratify.sh) with
// a config.json made from o: the ORAS referrer store, the notation verifier
// with o's trust policy and certificates, and the configPolicy policy
// provider requiring any notation signature to pass. HOME is a fresh
// folder, so no certificate, plugin or ORAS cache of another run is seen.
// It waits until the provider endpoint answers an empty request.
func StartRatify(t testing.TB, o RatifyOptions) *Ratify {
	t.Helper()
	bin := Tool(t, "ratify")
	if bin == "" {
		return nil // Missing skipped (or failed) the test
	}
	home := t.TempDir()
	policy := json.RawMessage(o.TrustPolicy)
	if !json.Valid(policy) {
		t.Fatalf("testenv: RatifyOptions.TrustPolicy is not JSON: %q", o.TrustPolicy)
	}
	executor := map[string]any{}
	if o.VerifyTimeout > 0 {
		executor["verificationRequestTimeout"] = o.VerifyTimeout.Milliseconds()
	}
	certs := o.Certs
	if certs == nil {
		certs = []string{}
	}
	conf := map[string]any{
		"executor": executor,
		"store": map[string]any{"version": "1.0.0", "plugins": []any{map[string]any{
			"name": "oras", "useHttp": o.PlainHTTP, "localCachePath": filepath.Join(home, "oras-cache"),
		}}},
		"policy": map[string]any{"version": "1.0.0", "plugin": map[string]any{
			"name": "configPolicy",
			"artifactVerificationPolicies": map[string]string{
				"application/vnd.cncf.notary.signature": "any",
			},
		}},
		"verifier": map[string]any{"version": "1.0.0", "plugins": []any{map[string]any{
			"name":              "notation",
			"artifactTypes":     "application/vnd.cncf.notary.signature",
			"verificationCerts": certs,
			"trustPolicyDoc":    policy,
		}}},
	}
	data, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	config := filepath.Join(home, "config.json")
	if err := os.WriteFile(config, data, 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	logFile := filepath.Join(t.TempDir(), "ratify.log")
	env := []string{"HOME=" + home, "RATIFY_CONFIG=" + home, "DOCKER_CONFIG=" + filepath.Join(home, "docker")}
	for range startTries {
		port, err := freePort()
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		argv := []string{bin, "serve", "--http", fmt.Sprintf("127.0.0.1:%d", port), "--config", config}
		if o.CacheTTL > 0 {
			argv = append(argv, "--cache-enabled", "--cache-ttl", o.CacheTTL.String())
		}
		proc, err := startProcess(t, argv, env, logFile)
		if err != nil {
			t.Fatalf("testenv: starting ratify: %v", err)
		}
		r := &Ratify{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Log: logFile, Config: config, proc: proc}
		err = r.waitReady()
		if err == nil {
			return r
		}
		r.Stop()
		if !strings.Contains(tail(logFile, 40), "address already in use") {
			t.Fatalf("testenv: starting ratify (%s): %v\n--- last lines of %s:\n%s", strings.Join(argv, " "), err, logFile, tail(logFile, 40))
		}
	}
	t.Fatalf("testenv: starting ratify: every port tried was taken\n--- last lines of %s:\n%s", logFile, tail(logFile, 40))
	return nil
}

// waitReady posts an empty ProviderRequest until Ratify answers 200 or
// the process exits.
func (r *Ratify) waitReady() error {
	deadline := time.Now().Add(ratifyStartTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-r.proc.done:
			return fmt.Errorf("exited before answering: %v", r.proc.cmd.ProcessState)
		default:
		}
		_, err := GatekeeperVerify(context.Background(), client, r.URL+RatifyVerifyPath, []string{})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to POST %s within %v: %w", RatifyVerifyPath, ratifyStartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the process at once and waits until it is reaped. Ratify
// keeps nothing worth a graceful stop, and its graceful stop sleeps 5 s.
func (r *Ratify) Stop() {
	select {
	case <-r.proc.done:
		return
	default:
	}
	r.proc.cmd.Process.Kill()
	<-r.proc.done
}

// Pid is the process id of the ratify process.
func (r *Ratify) Pid() int { return r.proc.cmd.Process.Pid }

// GatekeeperItem is one item of a Gatekeeper external data ProviderResponse
// (externaldata.gatekeeper.sh): the key asked, the provider's value and its
// error for that key.
type GatekeeperItem struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
}

// maxProviderResponse bounds a ProviderResponse read by GatekeeperVerify.
const maxProviderResponse = 16 << 20

// GatekeeperVerify posts a ProviderRequest for keys to endpoint, as
// Gatekeeper does, and returns the response's items in key order. It fails
// on a status other than 200, a system error in the response, or items
// that do not match the keys one to one.
func GatekeeperVerify(ctx context.Context, client *http.Client, endpoint string, keys []string) ([]GatekeeperItem, error) {
	body, err := json.Marshal(map[string]any{
		"apiVersion": "externaldata.gatekeeper.sh/v1beta1",
		"kind":       "ProviderRequest",
		"request":    map[string]any{"keys": keys},
	})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderResponse+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxProviderResponse {
		return nil, fmt.Errorf("POST %s: response larger than %d bytes", endpoint, maxProviderResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %s", endpoint, resp.Status, data)
	}
	var pr struct {
		Response struct {
			Idempotent  bool             `json:"idempotent"`
			Items       []GatekeeperItem `json:"items"`
			SystemError string           `json:"systemError"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &pr); err != nil {
		return nil, fmt.Errorf("POST %s: not a ProviderResponse: %w: %s", endpoint, err, data)
	}
	if pr.Response.SystemError != "" {
		return nil, fmt.Errorf("POST %s: systemError %q", endpoint, pr.Response.SystemError)
	}
	// Ratify answers items in completion order: put them in key order.
	byKey := make(map[string]GatekeeperItem, len(pr.Response.Items))
	for _, it := range pr.Response.Items {
		if _, dup := byKey[it.Key]; dup {
			return nil, fmt.Errorf("POST %s: two items for key %q", endpoint, it.Key)
		}
		byKey[it.Key] = it
	}
	if len(byKey) != len(keys) {
		return nil, fmt.Errorf("POST %s: %d items for %d keys: %s", endpoint, len(byKey), len(keys), data)
	}
	out := make([]GatekeeperItem, len(keys))
	for i, k := range keys {
		it, ok := byKey[k]
		if !ok {
			return nil, fmt.Errorf("POST %s: no item for key %q: %s", endpoint, k, data)
		}
		out[i] = it
	}
	return out, nil
}

// RatifyVerdict is what Ratify's item value says of an image: isSuccess,
// and the verifier reports as JSON (for messages).
type RatifyVerdict struct {
	IsSuccess       bool            `json:"isSuccess"`
	VerifierReports json.RawMessage `json:"verifierReports,omitempty"`
}

// ParseRatifyValue decodes the value of an item of Ratify's
// ProviderResponse (httpserver.VerificationResponse). An item with an
// error, or no value, is an error: Ratify did not reach a verdict.
func ParseRatifyValue(it GatekeeperItem) (*RatifyVerdict, error) {
	if it.Error != "" {
		return nil, errors.New(it.Error)
	}
	if len(it.Value) == 0 || string(it.Value) == "null" {
		return nil, fmt.Errorf("item %q has no value", it.Key)
	}
	var v RatifyVerdict
	if err := json.Unmarshal(it.Value, &v); err != nil {
		return nil, fmt.Errorf("item %q: value is not a Ratify verification response: %w", it.Key, err)
	}
	return &v, nil
}
