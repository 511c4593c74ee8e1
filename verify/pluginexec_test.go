package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	pfw "github.com/notaryproject/notation-plugin-framework-go/plugin"
)

var (
	runnerPluginOnce sync.Once
	runnerPlugin     []byte
	runnerPluginErr  error
)

// installRunnerPlugin builds testdata/testplugin (once per test binary) and
// installs it in a new plugin directory as notation-<name>.
func installRunnerPlugin(t *testing.T, name string) string {
	t.Helper()
	runnerPluginOnce.Do(func() {
		d, err := os.MkdirTemp("", "verify-runner-plugin-")
		if err != nil {
			runnerPluginErr = err
			return
		}
		defer os.RemoveAll(d)
		bin := filepath.Join(d, "plugin")
		if out, err := exec.Command("go", "build", "-o", bin, "./testdata/testplugin").CombinedOutput(); err != nil {
			runnerPluginErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		runnerPlugin, runnerPluginErr = os.ReadFile(bin)
	})
	if runnerPluginErr != nil {
		t.Fatal(runnerPluginErr)
	}
	return installPluginBytes(t, name, runnerPlugin)
}

func installPluginBytes(t *testing.T, name string, data []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name, "notation-"+name), data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// installScript installs a shell script as a plugin.
func installScript(t *testing.T, name, script string) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("shell-script plugins need a POSIX shell")
	}
	return installPluginBytes(t, name, []byte("#!/bin/sh\n"+script+"\n"))
}

func TestLocatePlugin(t *testing.T) {
	dir := installRunnerPlugin(t, "runner")
	p, err := locatePlugin(dir, "runner", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "runner", "notation-runner"); p.path != want {
		t.Errorf("path %s, want %s", p.path, want)
	}
	if _, err := locatePlugin(dir, "absent", 0); err == nil || !strings.HasPrefix(err.Error(), "plugin executable file is either not found or inaccessible: ") {
		t.Errorf("absent plugin: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "dir", "notation-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := locatePlugin(dir, "dir", 0); err == nil || err.Error() != "plugin executable file is not a regular file" {
		t.Errorf("directory as plugin: %v", err)
	}
	// Names from signatures never leave the plugin directory, even when
	// the file they name exists.
	outside := installRunnerPlugin(t, "escape")
	rel, err := filepath.Rel(dir, filepath.Join(outside, "escape"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", ".", "..", "../runner", "a/b", `a\b`, "a\x00b", rel, filepath.Join(outside, "escape")} {
		if _, err := locatePlugin(dir, name, 0); err == nil || !strings.Contains(err.Error(), "is not a valid file name") {
			t.Errorf("name %q: %v, want it refused", name, err)
		}
	}
}

func TestPluginMetadata(t *testing.T) {
	dir := installRunnerPlugin(t, "runner")
	p, err := locatePlugin(dir, "runner", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	md, err := p.metadata(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if md.Name != "runner" || md.Version != "1.0.0" || len(md.Capabilities) != 2 {
		t.Errorf("metadata %+v", md)
	}
	tests := []struct {
		config map[string]string
		want   string
	}{
		{map[string]string{"name": "other"}, `plugin executable file name must be "notation-other" instead of "notation-runner"`},
		{map[string]string{"fail": "get-plugin-metadata"}, "test plugin fails get-plugin-metadata"},
		{map[string]string{"garbage": "get-plugin-metadata"}, "failed to unmarshal the response of get-plugin-metadata command for plugin runner"},
	}
	for _, tc := range tests {
		if _, err := p.metadata(ctx, tc.config); err == nil || err.Error() != tc.want {
			t.Errorf("config %v: %v, want %q", tc.config, err, tc.want)
		}
	}
}

func TestPluginMetadataValidation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		metadata string
		want     string
	}{
		{`{"name":"","description":"d","version":"1.0.0","url":"u","supportedContractVersions":["1.0"],"capabilities":["x"]}`, "metadata validation failed for plugin meta: empty name"},
		{`{"name":"meta","description":"","version":"1.0.0","url":"u","supportedContractVersions":["1.0"],"capabilities":["x"]}`, "metadata validation failed for plugin meta: empty description"},
		{`{"name":"meta","description":"d","version":"","url":"u","supportedContractVersions":["1.0"],"capabilities":["x"]}`, "metadata validation failed for plugin meta: empty version"},
		{`{"name":"meta","description":"d","version":"1.0.0","url":"","supportedContractVersions":["1.0"],"capabilities":["x"]}`, "metadata validation failed for plugin meta: empty url"},
		{`{"name":"meta","description":"d","version":"1.0.0","url":"u","supportedContractVersions":["1.0"],"capabilities":[]}`, "metadata validation failed for plugin meta: empty capabilities"},
		{`{"name":"meta","description":"d","version":"1.0.0","url":"u","capabilities":["x"]}`, "metadata validation failed for plugin meta: supported contract versions not specified"},
		{`{"name":"meta","description":"d","version":"1.0.0","url":"u","supportedContractVersions":["2.0"],"capabilities":["x"]}`, `metadata validation failed for plugin meta: contract version "1.0" is not in the list of the plugin supported versions [2.0]`},
	}
	for _, tc := range tests {
		dir := installScript(t, "meta", "cat >/dev/null; echo '"+tc.metadata+"'")
		p, err := locatePlugin(dir, "meta", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.metadata(ctx, nil); err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.metadata, err, tc.want)
		}
	}
}

// TestPluginRunFailures covers each way a plugin process can fail, with
// the message notation gives.
func TestPluginRunFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, script string
		timeout      time.Duration
		want         string // exact, or a prefix ending in "*"
	}{
		{"error-json", `cat >/dev/null; echo '{"errorCode":"ACCESS_DENIED","errorMessage":"no access"}' >&2; exit 1`, 0, "no access"},
		{"error-json-without-message", `cat >/dev/null; echo '{"errorCode":"ERROR"}' >&2; exit 1`, 0, "<nil>"},
		{"error-empty-object", `cat >/dev/null; echo '{}' >&2; exit 1`, 0, "incomplete json"},
		{"error-not-json", `cat >/dev/null; echo 'segfault' >&2; exit 3`, 0, "invalid character*"},
		{"exit-without-stderr", `cat >/dev/null; exit 2`, 0, "exit status 2"},
		{"stdout-not-json", `cat >/dev/null; echo 'hello'`, 0, "failed to unmarshal the response of verify-signature command for plugin script"},
		{"timeout", `sleep 5`, 200 * time.Millisecond, "*command execution timeout: signal: killed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := installScript(t, "script", tc.script)
			p, err := locatePlugin(dir, "script", tc.timeout)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err = p.verifySignature(ctx, &pfw.VerifySignatureRequest{ContractVersion: "1.0"})
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error()
			switch {
			case strings.HasPrefix(tc.want, "*"):
				if !strings.HasSuffix(got, tc.want[1:]) {
					t.Errorf("got %q, want it to end with %q", got, tc.want[1:])
				}
			case strings.HasSuffix(tc.want, "*"):
				if !strings.HasPrefix(got, strings.TrimSuffix(tc.want, "*")) {
					t.Errorf("got %q, want it to start with %q", got, tc.want)
				}
			case got != tc.want:
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if tc.timeout > 0 && time.Since(start) > 3*time.Second {
				t.Errorf("the timeout did not stop the plugin (%v)", time.Since(start))
			}
		})
	}
}

// TestPluginVerifySignatureRoundTrip sends a request and checks what the
// plugin received and answered.
func TestPluginVerifySignatureRoundTrip(t *testing.T) {
	dir := installRunnerPlugin(t, "runner")
	p, err := locatePlugin(dir, "runner", 0)
	if err != nil {
		t.Fatal(err)
	}
	record := t.TempDir()
	expiry := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	req := &pfw.VerifySignatureRequest{
		ContractVersion: pfw.ContractVersion,
		Signature: pfw.Signature{
			CriticalAttributes: pfw.CriticalAttributes{
				ContentType:        PayloadTypeV1,
				SigningScheme:      "notary.x509",
				Expiry:             &expiry,
				ExtendedAttributes: map[string]any{"com.example.a": "x"},
			},
			UnprocessedAttributes: []string{"com.example.a"},
			CertificateChain:      [][]byte{{1, 2, 3}},
		},
		TrustPolicy: pfw.TrustPolicy{
			TrustedIdentities:     []string{"*"},
			SignatureVerification: []pfw.Capability{pfw.CapabilityTrustedIdentityVerifier, pfw.CapabilityRevocationCheckVerifier},
		},
		PluginConfig: map[string]string{"record": record, "revocation": "fail"},
	}
	resp, err := p.verifySignature(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.VerificationResults[pfw.CapabilityTrustedIdentityVerifier]; r == nil || !r.Success {
		t.Errorf("identity result %+v", r)
	}
	if r := resp.VerificationResults[pfw.CapabilityRevocationCheckVerifier]; r == nil || r.Success || r.Reason == "" {
		t.Errorf("revocation result %+v", r)
	}
	if len(resp.ProcessedAttributes) != 1 || resp.ProcessedAttributes[0] != "com.example.a" {
		t.Errorf("processed %v", resp.ProcessedAttributes)
	}
	sent, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(record, "verify-signature-0.json"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(sent) {
		t.Errorf("the plugin received\n%s\nwant\n%s", got, sent)
	}
	if !strings.Contains(string(got), `"expiry":"2030-01-02T03:04:05Z"`) || strings.Contains(string(got), "authenticSigningTime") {
		t.Errorf("request times: %s", got)
	}
}

func TestBoundedBuffer(t *testing.T) {
	var b boundedBuffer
	chunk := make([]byte, 1<<20)
	var err error
	for i := 0; i <= MaxPluginOutput>>20 && err == nil; i++ {
		_, err = b.Write(chunk)
	}
	if err == nil || !b.overflow || b.Len() != MaxPluginOutput {
		t.Fatalf("after writing past the bound: err %v, overflow %v, len %d", err, b.overflow, b.Len())
	}
}

func TestSafePluginName(t *testing.T) {
	for name, want := range map[string]bool{
		"kwtest": true, "my-plugin.v2": true, "com.example_plugin": true,
		"": false, ".": false, "..": false, "../x": false, "x/..": false, "/abs": false, `c:\x`: false, "a\x00": false,
	} {
		if got := safePluginName(name); got != want {
			t.Errorf("safePluginName(%q) = %v, want %v", name, got, want)
		}
	}
}
