package registryauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/keyward/keyward/registryauth"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// setup writes a docker config and helpers and returns the environment.
func setup(t *testing.T, config any, helpers map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	b, _ := json.Marshal(config)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for name, script := range helpers {
		if err := os.WriteFile(filepath.Join(bin, "docker-credential-"+name), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{"DOCKER_CONFIG": dir, "PATH": bin + ":" + os.Getenv("PATH")}
}

func resolver(t *testing.T, env map[string]string, o registryauth.Options) *registryauth.Resolver {
	t.Helper()
	o.Getenv = func(k string) string { return env[k] }
	o.Path = env["PATH"]
	r, err := registryauth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOrder(t *testing.T) {
	env := setup(t, map[string]any{
		"auths": map[string]any{
			"https://file.example":        map[string]string{"auth": b64("fileuser:filepass")},
			"token.example":               map[string]string{"auth": b64("00000000-0000-0000-0000-000000000000:"), "identitytoken": "refresh-1"},
			"https://index.docker.io/v1/": map[string]string{"auth": b64("hubuser:hubpass")},
			"helped.example":              map[string]string{"auth": b64("not:used")},
		},
		"credHelpers": map[string]string{"helped.example": "kw"},
	}, map[string]string{"kw": `read host; printf '{"ServerURL":"%s","Username":"helper","Secret":"s"}' "$host"`})
	env["NOTATION_USERNAME"], env["NOTATION_PASSWORD"] = "envuser", "envpass"
	explicit := &auth.Credential{Username: "flag", Password: "flagpass"}
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		o        registryauth.Options
		host     string
		want     auth.Credential
		noNotEnv bool
	}{
		{"flag first", registryauth.Options{Explicit: explicit, Hosts: []string{"file.example"}}, "file.example", *explicit, false},
		{"flag only for named hosts", registryauth.Options{Explicit: explicit, Hosts: []string{"other.example"}}, "file.example", auth.Credential{Username: "fileuser", Password: "filepass"}, false},
		{"notation environment", registryauth.Options{Hosts: []string{"file.example"}}, "file.example", auth.Credential{Username: "envuser", Password: "envpass"}, false},
		{"auths with scheme", registryauth.Options{}, "file.example", auth.Credential{Username: "fileuser", Password: "filepass"}, false},
		{"identitytoken", registryauth.Options{}, "token.example", auth.Credential{Username: "00000000-0000-0000-0000-000000000000", RefreshToken: "refresh-1"}, false},
		{"docker hub", registryauth.Options{}, "registry-1.docker.io", auth.Credential{Username: "hubuser", Password: "hubpass"}, false},
		{"credHelpers before auths", registryauth.Options{}, "helped.example", auth.Credential{Username: "helper", Password: "s"}, false},
		{"none", registryauth.Options{}, "none.example", auth.EmptyCredential, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolver(t, env, tc.o).Credential(ctx, tc.host)
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
	env["NOTATION_USERNAME"] = ""
	got, _ := resolver(t, env, registryauth.Options{Hosts: []string{"x.example"}}).Credential(ctx, "x.example")
	if got != (auth.Credential{RefreshToken: "envpass"}) {
		t.Errorf("NOTATION_PASSWORD alone: got %+v, want it as a refresh token", got)
	}
}

func TestHelpers(t *testing.T) {
	const secret = "top-secret-value"
	env := setup(t, map[string]any{"credsStore": "store", "credHelpers": map[string]string{
		"hang.example": "hang", "garbage.example": "garbage", "flood.example": "flood", "fail.example": "fail",
		"missing.example": "missing", "notfound.example": "notfound", "token.example": "token",
	}}, map[string]string{
		"store":    `cat >/dev/null; echo '{"Username":"u","Secret":"p"}'`,
		"hang":     `sleep 60`,
		"garbage":  `echo "` + secret + `"`,
		"flood":    `yes ` + secret,
		"fail":     `echo "` + secret + `" >&2; exit 3`,
		"notfound": `echo "credentials not found in native keychain"; exit 1`,
		"token":    `echo '{"Username":"<token>","Secret":"` + secret + `"}'`,
	})
	r := resolver(t, env, registryauth.Options{HelperTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	if got, err := r.Credential(ctx, "any.example"); err != nil || got != (auth.Credential{Username: "u", Password: "p"}) {
		t.Errorf("credsStore: %+v, %v", got, err)
	}
	if got, err := r.Credential(ctx, "notfound.example"); err != nil || got != auth.EmptyCredential {
		t.Errorf("credentials not found: %+v, %v; want anonymous", got, err)
	}
	if got, err := r.Credential(ctx, "token.example"); err != nil || got != (auth.Credential{RefreshToken: secret}) {
		t.Errorf("<token>: %+v, %v", got, err)
	}
	for host, kind := range map[string]registryauth.HelperErrorKind{
		"hang.example": registryauth.HelperTimeout, "garbage.example": registryauth.HelperBadOutput,
		"flood.example": registryauth.HelperOutputTooLarge, "fail.example": registryauth.HelperFailed,
		"missing.example": registryauth.HelperNotFound,
	} {
		start := time.Now()
		_, err := r.Credential(ctx, host)
		var he *registryauth.HelperError
		if !errors.As(err, &he) || he.Kind != kind {
			t.Errorf("%s: %v, want a %s HelperError", host, err, kind)
			continue
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: took %s", host, d)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the helper's output is in the error: %v", host, err)
		}
		if !strings.Contains(err.Error(), "docker-credential-") || !strings.Contains(err.Error(), host) {
			t.Errorf("%s: %v does not name the helper and the registry", host, err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	env := setup(t, map[string]any{"auths": map[string]any{"bad.example": map[string]string{"auth": "!!not-base64-secret"}}}, nil)
	credential := func(o registryauth.Options, host string) (auth.Credential, error) {
		t.Helper()
		r, err := registryauth.New(o)
		if err != nil {
			t.Fatal(err)
		}
		return r.Credential(context.Background(), host)
	}
	// The credential given on the command line does not need the file.
	o := registryauth.Options{Getenv: func(k string) string { return env[k] }, Explicit: &auth.Credential{Username: "u", Password: "p"}, Hosts: []string{"x.example"}}
	if c, err := credential(o, "x.example"); err != nil || c.Username != "u" {
		t.Errorf("explicit credential with a broken docker config: %+v, %v", c, err)
	}
	_, err := credential(o, "other.example")
	var ce *registryauth.ConfigError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), `auths["bad.example"].auth`) || strings.Contains(err.Error(), "secret") {
		t.Errorf("err %v, want a ConfigError naming the field and not its value", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{not json"), 0o600)
	_, err = credential(registryauth.Options{Getenv: func(k string) string { return map[string]string{"DOCKER_CONFIG": dir}[k] }}, "x.example")
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "is not valid JSON") {
		t.Errorf("err %v, want a ConfigError", err)
	}
	// A missing file is no credential.
	r, err := registryauth.New(registryauth.Options{Getenv: func(k string) string { return map[string]string{"HOME": t.TempDir()}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := r.Credential(context.Background(), "x.example"); err != nil || c != auth.EmptyCredential {
		t.Errorf("%+v, %v", c, err)
	}
}

// A helper name from the config file names a program on PATH: it cannot
// climb out of the PATH folders, and a relative PATH folder (".") is not
// searched, nor any relative folder, as exec.LookPath refuses them (Go 1.19
// os/exec, ErrDot): they run whatever the working directory holds.
func TestHelperLookupStaysOnPath(t *testing.T) {
	const stolen = `cat >/dev/null; echo '{"Username":"u","Secret":"ran"}'`
	env := setup(t, map[string]any{"credHelpers": map[string]string{"climb.example": "x/../evil", "dot.example": "dot"}}, nil)
	bin := strings.Split(env["PATH"], ":")[0]
	if err := os.WriteFile(filepath.Join(bin, "evil"), []byte("#!/bin/sh\n"+stolen+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(bin, "docker-credential-x"), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	for _, dir := range []string{work, filepath.Join(work, "rel")} {
		os.MkdirAll(dir, 0o755)
		if err := os.WriteFile(filepath.Join(dir, "docker-credential-dot"), []byte("#!/bin/sh\n"+stolen+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(work)
	env["PATH"] = "rel:.:" + env["PATH"]
	r := resolver(t, env, registryauth.Options{})
	for _, host := range []string{"climb.example", "dot.example"} {
		got, err := r.Credential(context.Background(), host)
		var he *registryauth.HelperError
		if !errors.As(err, &he) || he.Kind != registryauth.HelperNotFound {
			t.Errorf("%s: got %+v, %v; want a not-found HelperError, no program run", host, got, err)
		}
	}
}

// TestOnePasswordOneRegistry refuses a command-line or environment
// password when the references name several registries: it would reach
// each of them.
func TestOnePasswordOneRegistry(t *testing.T) {
	explicit := &auth.Credential{Username: "u", Password: "s3cret"}
	env := func(k string) string {
		return map[string]string{"NOTATION_USERNAME": "u", "NOTATION_PASSWORD": "s3cret"}[k]
	}
	for name, o := range map[string]registryauth.Options{
		"explicit":    {Explicit: explicit, Hosts: []string{"a.example", "b.example", "a.example"}},
		"environment": {Getenv: env, Hosts: []string{"a.example", "b.example"}},
	} {
		_, err := registryauth.New(o)
		var ae *registryauth.AmbiguousCredentialError
		if !errors.As(err, &ae) || len(ae.Hosts) != 2 || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, o := range map[string]registryauth.Options{
		"one registry, twice": {Explicit: explicit, Hosts: []string{"a.example", "a.example"}},
		"no password":         {Hosts: []string{"a.example", "b.example"}},
	} {
		if _, err := registryauth.New(o); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
