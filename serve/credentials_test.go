package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

const (
	regUser     = "keyward"
	regPassword = "s3cret-pull-pa55"
)

// lockedWorld is a world whose registry requires basic authentication;
// notation signs with the credentials of its docker config. It returns a
// signed reference.
func lockedWorld(t *testing.T) (*world, string) {
	t.Helper()
	reg := testenv.StartDistributionWithAuth(t, regUser, regPassword)
	w := newWorldOn(t, reg)
	dockerDir := filepath.Join(w.n.Home, ".docker")
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{
		reg.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(regUser + ":" + regPassword))}}})
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dockerDir, "config.json", cfg, 0o600)
	return w, w.signed(t, "locked/app")
}

// noDockerConfig is an environment without a docker config.
func noDockerConfig(t *testing.T) Options {
	home := t.TempDir()
	return Options{Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
}

// TestPullSecrets verifies in a registry that requires authentication
// with the credentials of the pod's image pull secret, read through
// client-go; without it, or with a secret that cannot be read, the image
// is denied with the registry and the fix named. A denial cached for a
// pod without the secret is not served to a pod with it.
func TestPullSecrets(t *testing.T) {
	w, ref := lockedWorld(t)
	api := startAPIServer(t)
	api.pullSecret("team", "regcred", w.reg.Host, regUser, regPassword)
	api.pullSecret("team", "other-registry", "other.example:5000", regUser, "wrong")
	api.secret("team", "opaque", "Opaque", map[string][]byte{"password": []byte("x")})
	api.secret("team", "broken", "kubernetes.io/dockerconfigjson", map[string][]byte{".dockerconfigjson": []byte("{not json")})
	legacy, _ := json.Marshal(map[string]any{w.reg.Host: map[string]string{"username": regUser, "password": regPassword}})
	api.secret("team", "legacy", "kubernetes.io/dockercfg", map[string][]byte{".dockercfg": legacy})

	cfg := w.config(w.reg.Host)
	cfg.Kubernetes = KubernetesConfig{Kubeconfig: api.kubeconfig, PullSecrets: true}
	s, err := New(cfg, noDockerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := func(secrets ...string) *verify.ReferenceResult {
		return s.VerifyImage(ctx, ImageRequest{Namespace: "team", Reference: ref, PullSecrets: secrets})
	}
	// First without: the denial is cached for the failure TTL.
	r := in()
	wantVerdict(t, "without a pull secret", r, false, verify.ErrorResolve, "registry "+w.reg.Host+" requires authentication (401) and no credential is configured")
	if r.Error != nil && !strings.Contains(r.Error.Message, "imagePullSecret") {
		t.Errorf("the denial does not name keyward serve's fix: %s", r.Error.Message)
	}
	// keyward serve's fix, in place of the CLI's, right after the
	// registry: an admission denial is clipped, its end lost.
	if r.Error != nil && (strings.Contains(r.Error.Message, "--password-stdin") ||
		!strings.Contains(r.Error.Message, "registry "+w.reg.Host+" requires authentication (401) and no credential is configured for it: keyward serve: give the pod an imagePullSecret")) {
		t.Errorf("the denial names the CLI's fix, or keyward serve's far from the registry: %s", r.Error.Message)
	}
	wantVerdict(t, "secrets of other registries and types", in("other-registry", "opaque", "missing"), false, verify.ErrorResolve, "no credential is configured")
	wantVerdict(t, "with the pull secret", in("missing", "regcred"), true, "", "")
	wantVerdict(t, "with a .dockercfg secret", in("legacy"), true, "", "")
	wantVerdict(t, "a malformed secret", in("broken", "regcred"), false, verify.ErrorRetrievalFailed, "image pull secret team/broken")
	for _, r := range []*verify.ReferenceResult{in(), in("regcred")} {
		if b, _ := json.Marshal(r); bytes.Contains(b, []byte(regPassword)) {
			t.Error("the password is in a result")
		}
	}
	// Off: the pod's secrets are not read.
	cfg.Kubernetes.PullSecrets = false
	off, err := New(cfg, noDockerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	hits := api.hits.Load()
	wantVerdict(t, "pullSecrets off", off.VerifyImage(ctx, ImageRequest{Namespace: "team", Reference: ref, PullSecrets: []string{"regcred"}}),
		false, verify.ErrorResolve, "no credential is configured")
	if api.hits.Load() != hits {
		t.Error("secrets were read with kubernetes.pullSecrets off")
	}
	// Secrets that cannot be read: denied with the fix.
	api.status.Store(http.StatusForbidden)
	r = in("uncached")
	wantVerdict(t, "forbidden", r, false, verify.ErrorRetrievalFailed, "get on secrets in namespace team")
	// The fix before the API server's message, which may be long.
	if r.Error != nil && strings.Index(r.Error.Message, "grant") > strings.Index(r.Error.Message, "refused by the test API server") {
		t.Errorf("the fix comes after the API server's message: %s", r.Error.Message)
	}
}

// TestRegistryCredentialFile verifies with registry.credentials: the
// password comes from its file, read again when the file changes.
func TestRegistryCredentialFile(t *testing.T) {
	w, ref := lockedWorld(t)
	pw := filepath.Join(t.TempDir(), "password")
	writeFile(t, pw, []byte(regPassword+"\n"))
	cfg := w.config(w.reg.Host)
	cfg.Registry.Credentials = []RegistryCredential{{Registry: w.reg.Host, Username: regUser, PasswordFile: pw}}
	cfg.Cache.FailureTTL = 0
	s, err := New(cfg, noDockerConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wantVerdict(t, "with the password file", s.Verify(ctx, ref), true, "", "")
	// A verdict is per artifact: a new server, so that none is cached.
	s, _ = New(cfg, noDockerConfig(t))
	writeFile(t, pw, []byte("wrong-password"))
	r := s.Verify(ctx, ref)
	wantVerdict(t, "a wrong password", r, false, verify.ErrorResolve, "registry "+w.reg.Host+" requires authentication or refused the credentials (401)")
	if b, _ := json.Marshal(r); bytes.Contains(b, []byte("wrong-password")) {
		t.Error("the password is in a result")
	}
	writeFile(t, pw, []byte(regPassword))
	wantVerdict(t, "the password rotated back", s.Verify(ctx, ref), true, "", "")
	os.Remove(pw)
	s, _ = New(cfg, noDockerConfig(t))
	wantVerdict(t, "the password file gone", s.Verify(ctx, ref), false, verify.ErrorResolve, "registry.credentials of "+w.reg.Host+": password file")
}

// TestCredentialPrecedence checks the documented order per registry: the
// pod's pull secret before registry.credentials before the docker config;
// a credential the registry refuses is not followed by the next source.
func TestCredentialPrecedence(t *testing.T) {
	w, ref := lockedWorld(t)
	api := startAPIServer(t)
	api.pullSecret("team", "good", w.reg.Host, regUser, regPassword)
	api.pullSecret("team", "bad", w.reg.Host, regUser, "not-the-password")
	wrong := filepath.Join(t.TempDir(), "wrong")
	writeFile(t, wrong, []byte("not-the-password"))
	cfg := w.config(w.reg.Host)
	cfg.Kubernetes = KubernetesConfig{Kubeconfig: api.kubeconfig, PullSecrets: true}
	cfg.Registry.Credentials = []RegistryCredential{{Registry: w.reg.Host, Username: regUser, PasswordFile: wrong}}
	// The docker config of the world holds the right password.
	cfg.Registry.DockerConfig = filepath.Join(w.n.Home, ".docker")
	cfg.Cache.FailureTTL = 0
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := func(secrets ...string) *verify.ReferenceResult {
		return s.VerifyImage(ctx, ImageRequest{Namespace: "team", Reference: ref, PullSecrets: secrets})
	}
	wantVerdict(t, "registry.credentials (wrong) before the docker config (right)", in(), false, verify.ErrorResolve, "refused the credentials (401)")
	wantVerdict(t, "the pull secret (right) before registry.credentials (wrong)", in("good"), true, "", "")
	wantVerdict(t, "the first pull secret (wrong) is not followed by the next", in("bad", "good"), false, verify.ErrorResolve, "refused the credentials (401)")
	cfg.Registry.Credentials = nil
	s, err = New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	wantVerdict(t, "the docker config", s.Verify(ctx, ref), true, "", "")
}
