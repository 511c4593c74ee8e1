package testenv

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/testpki"
)

// recorder is a testing.TB whose Fatalf and Skipf only record, so that the
// reporting helpers can be tested. Code under test must return after them.
type recorder struct {
	testing.TB
	fatal, skip string
}

func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }
func (r *recorder) Skipf(format string, args ...any)  { r.skip = fmt.Sprintf(format, args...) }

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		ci        string
		wantFatal bool
	}{
		{"true", true}, {"1", true}, {"", false}, {"false", false}, {"yes please", false},
	} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			Missing(r, "widget %d is gone", 7)
			got, other := r.skip, r.fatal
			if tc.wantFatal {
				got, other = r.fatal, r.skip
			}
			if !strings.Contains(got, "widget 7 is gone") || other != "" {
				t.Errorf("CI=%q: fatal %q, skip %q; want the message as a %s", tc.ci, r.fatal, r.skip,
					map[bool]string{true: "failure", false: "skip"}[tc.wantFatal])
			}
		})
	}
}

func TestToolMissing(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(ToolsBinEnv, t.TempDir())
	r := &recorder{TB: t}
	if p := Tool(r, "notation"); p != "" {
		t.Errorf("Tool returned %q from an empty directory", p)
	}
	if !strings.Contains(r.skip, "make tools") || !strings.Contains(r.skip, `"notation"`) {
		t.Errorf("Tool's skip message %q does not name the tool and `make tools`", r.skip)
	}
}

func TestToolFound(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "olareg"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "registry"), []byte("not executable"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CI", "true")
	t.Setenv(ToolsBinEnv, dir)
	if got := Tool(t, "olareg"); got != filepath.Join(dir, "olareg") {
		t.Errorf("Tool(olareg) = %q", got)
	}
	r := &recorder{TB: t}
	Tool(r, "registry")
	if r.fatal == "" {
		t.Errorf("Tool accepted a file that is not executable")
	}
}

func TestModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"module github.com/keyward/keyward\n\ngo 1.24.0\n":      "github.com/keyward/keyward",
		"// c\nmodule \"github.com/keyward/keyward\" // x\n":    "github.com/keyward/keyward",
		"module\tgithub.com/keyward/keyward/tools\n":            "github.com/keyward/keyward/tools",
		"modules github.com/keyward/keyward\n":                  "",
		"go 1.24\n":                                             "",
		"  module   `github.com/keyward/keyward`  \nmodule x\n": "github.com/keyward/keyward",
	} {
		if got := modulePath([]byte(in)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || modulePath(data) != ModulePath {
		t.Fatalf("RepoRoot() = %s, whose go.mod is not module %s (%v)", root, ModulePath, err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv", "testenv.go")); err != nil {
		t.Errorf("RepoRoot() = %s, which does not hold this package: %v", root, err)
	}
	// The tools module below it has its own go.mod and must not be taken.
	if _, err := findModuleRoot(filepath.Join(root, "tools"), ModulePath); err != nil {
		t.Errorf("from tools/: %v", err)
	} else if got, _ := findModuleRoot(filepath.Join(root, "tools"), ModulePath); got != root {
		t.Errorf("from tools/: found %s, want %s", got, root)
	}
	if _, err := findModuleRoot(t.TempDir(), ModulePath); err == nil {
		t.Errorf("findModuleRoot found the module above a temporary directory")
	}
}

func TestBinaries(t *testing.T) {
	plugin := PluginBinary(t)
	if again := PluginBinary(t); again != plugin {
		t.Errorf("PluginBinary built twice: %s, then %s", plugin, again)
	}
	cmd := exec.Command(plugin, "get-plugin-metadata")
	cmd.Stdin = strings.NewReader("{}")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s get-plugin-metadata: %v", plugin, err)
	}
	var meta struct{ Name string }
	if err := json.Unmarshal(out, &meta); err != nil || meta.Name != "keyward" {
		t.Errorf("get-plugin-metadata printed %s (%v), want the keyward plugin's metadata", out, err)
	}

	keyward := KeywardBinary(t)
	if keyward == plugin {
		t.Fatalf("KeywardBinary and PluginBinary are both %s", keyward)
	}
	if out, err := exec.Command(keyward, "version").CombinedOutput(); err != nil {
		t.Errorf("%s version: %v\n%s", keyward, err, out)
	}
	if dir := filepath.Dir(plugin); !strings.HasPrefix(filepath.Base(dir), fmt.Sprintf("%s%d-", processDirPrefix, os.Getpid())) {
		t.Errorf("binaries are in %s, not in this process's directory", dir)
	}
}

func TestRemoveStaleDirs(t *testing.T) {
	// A process that has exited leaves a pid nobody uses for a while.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", processDirPrefix, cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(stale)
	mine, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", processDirPrefix, os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(mine)
	removeStaleDirs()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the directory of exited process %d is still there", cmd.Process.Pid)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the directory of this process was removed: %v", err)
	}
}

func TestNotationIsolation(t *testing.T) {
	n := NewNotation(t)
	out := n.MustRun(t, "version")
	if !strings.Contains(out, "\nVersion:     v"+NotationVersion+"\n") {
		t.Errorf("notation version printed %q, want version %s", out, NotationVersion)
	}
	if strings.Contains(out, "unreleased") {
		t.Errorf("notation version printed %q; scripts/tools.sh should build it like a release", out)
	}
	for _, want := range []string{"HOME=" + n.Home, "NOTATION_EXPERIMENTAL=1"} {
		if !contains(n.Env, want) {
			t.Errorf("Env lacks %s", want)
		}
	}

	// notation lists the plugin installed in ConfigDir, so ConfigDir is
	// where this notation reads its configuration.
	n.InstallPlugin(t, PluginBinary(t))
	out = n.MustRun(t, "plugin", "ls")
	if !strings.Contains(out, "keyward") {
		t.Fatalf("notation plugin ls does not list the installed plugin:\n%s", out)
	}
	// A test that appends a whole environment (SoftHSM.Env) keeps isolation.
	t.Setenv("HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	n.Env = append(n.Env, os.Environ()...)
	if out := n.MustRun(t, "plugin", "ls"); !strings.Contains(out, "keyward") {
		t.Errorf("after appending os.Environ() to Env, notation plugin ls lost the plugin:\n%s", out)
	}

	if _, stderr, err := n.Run(t, "no-such-command"); err == nil || !strings.Contains(stderr, "unknown command") {
		t.Errorf("notation no-such-command: err %v, stderr %q", err, stderr)
	}
	r := &recorder{TB: t}
	n.MustRun(r, "no-such-command")
	if !strings.Contains(r.fatal, "unknown command") {
		t.Errorf("MustRun's failure %q does not show notation's stderr", r.fatal)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestOCILayoutSignVerify signs an OCI layout from NewOCILayout with
// notation's own test key and verifies it under a trust policy written here
// with a trust store added here, then checks that a policy trusting another
// root rejects it.
func TestOCILayoutSignVerify(t *testing.T) {
	t.Parallel()
	n := NewNotation(t)
	n.MustRun(t, "cert", "generate-test", "--default", "keyward.test")
	crt := filepath.Join(n.ConfigDir, "localkeys", "keyward.test.crt")
	data, err := os.ReadFile(crt)
	if err != nil {
		t.Fatalf("notation cert generate-test wrote no certificate in ConfigDir: %v", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s holds no PEM block", crt)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	n.AddTrustStore(t, "ca", "added", cert)
	n.AddTrustStore(t, "ca", "other", testpki.Root(t, "testenv other root").Cert)

	layout, digest := NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	checkLayout(t, layout, digest)
	// Signing by tag proves index.json tags the manifest.
	n.MustRun(t, "sign", "--oci-layout", layout+":"+LayoutTag)

	policy := func(store string) []byte {
		return fmt.Appendf(nil, `{"version":"1.0","trustPolicies":[{"name":"layout","registryScopes":["local/layout"],
			"signatureVerification":{"level":"strict"},"trustStores":[%q],"trustedIdentities":["*"]}]}`, store)
	}
	n.SetTrustPolicy(t, policy("ca:added"))
	out := n.MustRun(t, "verify", "--oci-layout", "--scope", "local/layout", layout+"@"+digest)
	if !strings.Contains(out, "Successfully verified") || !strings.Contains(out, digest) {
		t.Errorf("notation verify printed %q", out)
	}

	n.SetTrustPolicy(t, policy("ca:other"))
	stdout, stderr, err := n.Run(t, "verify", "-v", "--oci-layout", "--scope", "local/layout", layout+"@"+digest)
	if err == nil {
		t.Errorf("notation verify trusted the signature under a policy trusting only another root:\n%s", stdout)
	} else if !strings.Contains(stderr, "trusted certificate") {
		t.Errorf("notation verify failed with %q, want a trust store mismatch", stderr)
	}

	if _, err := os.Stat(filepath.Join(layout, ocispec.ImageIndexFile)); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	NewOCILayout(r, layout)
	if !strings.Contains(r.fatal, "already exists") {
		t.Errorf("NewOCILayout over an existing layout: %q, want a refusal", r.fatal)
	}
}

// checkLayout checks the layout against the image-spec on its own: the
// layout file, the tagged manifest in the index, and that every blob is
// stored under its digest.
func checkLayout(t *testing.T, layout, digest string) {
	t.Helper()
	var lf ocispec.ImageLayout
	readJSON(t, filepath.Join(layout, ocispec.ImageLayoutFile), &lf)
	if lf.Version != "1.0.0" {
		t.Errorf("oci-layout version %q", lf.Version)
	}
	var index ocispec.Index
	readJSON(t, filepath.Join(layout, ocispec.ImageIndexFile), &index)
	if len(index.Manifests) != 1 || index.Manifests[0].Digest.String() != digest ||
		index.Manifests[0].Annotations[ocispec.AnnotationRefName] != LayoutTag {
		t.Errorf("index.json lists %+v, want %s tagged %s", index.Manifests, digest, LayoutTag)
	}
	blobs := filepath.Join(layout, "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Errorf("%d blobs, want 3 (config, layer, manifest)", len(entries))
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(blobs, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != e.Name() {
			t.Errorf("blob %s has digest %x", e.Name(), sum)
		}
	}
	var m ocispec.Manifest
	readJSON(t, filepath.Join(blobs, strings.TrimPrefix(digest, "sha256:")), &m)
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.MediaType != ocispec.MediaTypeImageConfig || len(m.Layers) != 1 {
		t.Errorf("manifest %+v is not a one-layer image manifest", m)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestRegistries(t *testing.T) {
	for _, tc := range []struct {
		name          string
		start         func(testing.TB) *Registry
		referrers     bool
		referrersCode int
	}{
		{"olareg", StartOlareg, true, http.StatusOK},
		{"distribution", StartDistribution, false, http.StatusNotFound},
		{"distribution-auth", func(t testing.TB) *Registry { return StartDistributionWithAuth(t, "keyward", "s3cret-"+randomHex(4)) }, false, http.StatusNotFound},
		{"distribution-tls", StartDistributionTLS, false, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := tc.start(t)
			if reg.Referrers != tc.referrers {
				t.Errorf("Referrers = %v, want %v", reg.Referrers, tc.referrers)
			}
			if !strings.HasPrefix(reg.Host, "127.0.0.1:") {
				t.Errorf("Host = %q, want 127.0.0.1:port", reg.Host)
			}
			ref, desc := PushArtifact(t, reg, "testenv/push")
			ref2, desc2 := PushArtifact(t, reg, "testenv/push")
			if ref == ref2 || desc.Digest == desc2.Digest {
				t.Errorf("two pushes gave the same artifact %s", ref)
			}
			if want := reg.Host + "/testenv/push@" + desc.Digest.String(); ref != want {
				t.Errorf("ref = %q, want %q", ref, want)
			}
			if desc.MediaType != ocispec.MediaTypeImageManifest || desc.Size == 0 {
				t.Errorf("descriptor %+v", desc)
			}

			code, body, ctype := get(t, reg, reg.URL()+"/v2/testenv/push/manifests/"+desc.Digest.String(), ocispec.MediaTypeImageManifest)
			if sum := sha256.Sum256(body); code != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != desc.Digest.String() ||
				int64(len(body)) != desc.Size || ctype != ocispec.MediaTypeImageManifest {
				t.Errorf("GET manifest: %d %s, %d bytes, want the pushed manifest", code, ctype, len(body))
			}
			var m ocispec.Manifest
			if err := json.Unmarshal(body, &m); err != nil || len(m.Layers) != 1 {
				t.Fatalf("manifest %s (%v)", body, err)
			}
			for _, b := range append(m.Layers, m.Config) {
				code, data, _ := get(t, reg, reg.URL()+"/v2/testenv/push/blobs/"+b.Digest.String(), "")
				if sum := sha256.Sum256(data); code != http.StatusOK || "sha256:"+hex.EncodeToString(sum[:]) != b.Digest.String() {
					t.Errorf("GET blob %s: %d, content digest %x", b.Digest, code, sum)
				}
			}

			code, body, _ = get(t, reg, reg.URL()+"/v2/testenv/push/referrers/"+desc.Digest.String(), ocispec.MediaTypeImageIndex)
			if code != tc.referrersCode {
				t.Errorf("GET referrers: %d, want %d\n%s", code, tc.referrersCode, body)
			}
			if reg.Username != "" {
				anonymous := &Registry{Host: reg.Host}
				if code, _, _ := get(t, anonymous, reg.URL()+"/v2/testenv/push/manifests/"+desc.Digest.String(), ""); code != http.StatusUnauthorized {
					t.Errorf("GET manifest without credentials: %d, want 401", code)
				}
			}
			if reg.CAFile != "" {
				if !strings.HasPrefix(reg.URL(), "https://") {
					t.Errorf("URL() = %s, want https://", reg.URL())
				}
				if _, err := http.Get(reg.URL() + "/v2/"); err == nil || !strings.Contains(err.Error(), "certificate") {
					t.Errorf("a client without the CA reached the registry: %v", err)
				}
			}
			if fi, err := os.Stat(reg.Log); err != nil || fi.Size() == 0 {
				t.Errorf("registry log %s is missing or empty: %v", reg.Log, err)
			}
		})
	}
}

// get fetches url from reg, with its credentials if it requires any.
func get(t *testing.T, reg *Registry, url, accept string) (code int, body []byte, contentType string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := reg.client(0).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body, resp.Header.Get("Content-Type")
}

// TestRegistryStopped checks that a registry process is gone once the test
// that started it has ended.
func TestRegistryStopped(t *testing.T) {
	t.Parallel()
	var regs []*Registry
	for _, start := range []func(testing.TB) *Registry{StartOlareg, StartDistribution} {
		t.Run("start", func(t *testing.T) { regs = append(regs, start(t)) })
	}
	if len(regs) != 2 {
		t.Fatalf("started %d registries, want 2", len(regs))
	}
	for _, reg := range regs {
		select {
		case <-reg.done:
		default:
			t.Errorf("the registry process %d still runs after its test ended", reg.cmd.Process.Pid)
		}
		if resp, err := http.Get("http://" + reg.Host + "/v2/"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers after its test ended", reg.Host)
		}
	}
}

// TestStartFailure checks that a registry that dies on startup is reported
// with the end of its log.
func TestStartFailure(t *testing.T) {
	t.Parallel()
	_, err := startRegistry(t, "broken", false, func(port int) ([]string, []string, error) {
		return []string{"/bin/sh", "-c", `echo "cannot serve on port $0: no luck" >&2; exit 3`, fmt.Sprint(port)}, nil, nil
	}, access{})
	if err == nil {
		t.Fatal("startRegistry succeeded with a command that exits")
	}
	for _, want := range []string{"broken", "exited", "no luck", "broken.log"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
}

func TestSoftHSM(t *testing.T) {
	t.Parallel()
	h := NewSoftHSM(t, "testenv alpha")
	pin2 := h.AddToken(t, "testenv beta")
	if h.PIN == "" || h.SOPIN == "" || pin2 == "" || pin2 == h.PIN {
		t.Errorf("PINs: user %q, SO %q, second token %q; want distinct random ones", h.PIN, h.SOPIN, pin2)
	}
	if !contains(h.Env, "SOFTHSM2_CONF="+h.Conf) {
		t.Errorf("Env lacks SOFTHSM2_CONF=%s", h.Conf)
	}

	out := run(t, h.Env, "softhsm2-util", "--show-slots")
	for _, label := range []string{h.Label, "testenv beta"} {
		if !strings.Contains(out, "Label:            "+label) {
			t.Errorf("softhsm2-util --show-slots does not show token %q:\n%s", label, out)
		}
	}
	if _, err := exec.LookPath("pkcs11-tool"); err != nil {
		Missing(t, "pkcs11-tool is not on PATH; run `make tools` (it installs opensc)")
		return
	}
	out = run(t, h.Env, "pkcs11-tool", "--module", h.Module, "--list-slots")
	for _, label := range []string{h.Label, "testenv beta"} {
		if !strings.Contains(out, "token label        : "+label) {
			t.Errorf("pkcs11-tool --list-slots does not show token %q:\n%s", label, out)
		}
	}
	// The PINs are the tokens' own: logging in works with them only.
	run(t, h.Env, "pkcs11-tool", "--module", h.Module, "--token-label", h.Label, "--login", "--pin", h.PIN, "--list-objects")
	run(t, h.Env, "pkcs11-tool", "--module", h.Module, "--token-label", "testenv beta", "--login", "--pin", pin2, "--list-objects")
	cmd := exec.Command("pkcs11-tool", "--module", h.Module, "--token-label", "testenv beta", "--login", "--pin", h.PIN, "--list-objects")
	cmd.Env = h.Env
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("pkcs11-tool logged in to the second token with the first token's PIN:\n%s", out)
	}

	// Another SoftHSM does not see these tokens.
	other := NewSoftHSM(t, "testenv gamma")
	out = run(t, other.Env, "softhsm2-util", "--show-slots")
	if strings.Contains(out, "testenv alpha") || !strings.Contains(out, "testenv gamma") {
		t.Errorf("a second SoftHSM shows the wrong tokens:\n%s", out)
	}
}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func TestRedis(t *testing.T) {
	r := StartRedisWithPassword(t, "s3cret-"+randomHex(4))
	if err := r.ping(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	wrong := *r
	wrong.Password = "wrong"
	if err := wrong.ping(); err == nil {
		t.Error("AUTH with a wrong password answered PONG")
	}
	r.Stop()
	r.Stop()
	if err := r.ping(); err == nil {
		t.Error("redis-server still answers after Stop")
	}
}
