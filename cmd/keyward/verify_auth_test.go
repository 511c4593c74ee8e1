package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/oci"
)

// tokenWorld is a registry with token authentication (distribution v3.1.2
// and the test token issuer), an artifact signed by notation through it in
// a private repository and one in a public repository.
type tokenWorld struct {
	*signedWorld
	issuer              *testenv.TokenIssuer
	reg                 *testenv.Registry
	private, public     string // signed references
	unsigned            string // reference without a signature, private
	policy              string
	user, pass, refresh string
}

func newTokenWorld(t *testing.T) *tokenWorld {
	t.Helper()
	w := &tokenWorld{signedWorld: newSignedWorld(t), user: "keyward", pass: "s3cret-t0ken-pa55", refresh: "refresh-t0ken-9f8e7d"}
	w.issuer = testenv.StartTokenIssuer(t, testenv.TokenIssuerOptions{
		Users:         map[string]string{w.user: w.pass},
		RefreshTokens: map[string]string{w.refresh: w.user},
		Public:        []string{"public/app"},
	})
	w.reg = testenv.StartDistributionWithTokenAuth(t, w.issuer, w.user, w.pass)
	// notation logs in through the docker config, as `notation login` does.
	writeDockerConfig(t, filepath.Join(w.n.Home, ".docker"), map[string]any{"auths": map[string]any{
		w.reg.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(w.user + ":" + w.pass))}}})
	w.private, _ = testenv.PushArtifact(t, w.reg, "private/app")
	w.public, _ = testenv.PushArtifact(t, w.reg, "public/app")
	w.unsigned, _ = testenv.PushArtifact(t, w.reg, "private/app")
	w.sign(t, "--insecure-registry", w.private)
	w.sign(t, "--insecure-registry", w.public)
	w.policy = w.signedWorld.policy(t, "all", "*", "strict", cmdIdentity)
	doc, err := os.ReadFile(w.policy)
	if err != nil {
		t.Fatal(err)
	}
	w.n.SetTrustPolicy(t, doc)
	return w
}

func writeDockerConfig(t *testing.T, dir string, config map[string]any) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(config)
	return testpki.WriteFile(t, dir, "config.json", b, 0o600)
}

// writeHelper writes docker-credential-<name> into a new folder and
// returns the folder, to put on PATH.
func writeHelper(t *testing.T, name, script string) string {
	t.Helper()
	dir := t.TempDir()
	testpki.WriteFile(t, dir, "docker-credential-"+name, []byte("#!/bin/sh\n"+script+"\n"), 0o755)
	return dir
}

// checkNoSecret fails when a password, refresh token or issued token
// (a JWT, "eyJ...") was printed.
func (w *tokenWorld) checkNoSecret(t *testing.T, out ...string) {
	t.Helper()
	all := strings.Join(out, "")
	for _, s := range []string{w.pass, w.refresh, "wrong-pa55", "eyJ"} {
		if strings.Contains(all, s) {
			t.Fatalf("a secret (%q) was printed:\n%s", s[:3]+"...", all)
		}
	}
}

// TestVerifyTokenAuth verifies against a registry that hands out bearer
// tokens, with each source of credentials, and checks the failures say
// what to do.
func TestVerifyTokenAuth(t *testing.T) {
	w := newTokenWorld(t)
	host := w.reg.Host
	sysPath := os.Getenv("PATH")
	noCreds := func() map[string]string { return map[string]string{"HOME": t.TempDir(), "PATH": sysPath} }
	withConfig := func(config map[string]any) map[string]string {
		env := noCreds()
		env["DOCKER_CONFIG"] = t.TempDir()
		writeDockerConfig(t, env["DOCKER_CONFIG"], config)
		return env
	}
	check := func(name string, env map[string]string, stdin string, extra []string, ref string, wantMessage string) {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"--policy", w.policy, "--trust-store", w.store, "--insecure-registry", host, "-o", "json", "-v"}, extra...)
			start := time.Now()
			status, out, errOut := runVerifyCmd(t, env, stdin, append(args, ref)...)
			if d := time.Since(start); d > 30*time.Second {
				t.Errorf("took %s", d)
			}
			w.checkNoSecret(t, out, errOut)
			rs := decodeLines(t, out)
			if len(rs) != 2 {
				t.Fatalf("%d lines, want a result and a summary:\n%s%s", len(rs), out, errOut)
			}
			if wantMessage == "" {
				if status != exitOK || !rs[0].Verified {
					t.Fatalf("status %d, result %+v\n%s", status, rs[0], errOut)
				}
				return
			}
			if status != exitFailure || rs[0].Verified || rs[0].Error == nil || !strings.Contains(rs[0].Error.Message, wantMessage) {
				t.Fatalf("status %d, error %+v; want a message with %q", status, rs[0].Error, wantMessage)
			}
		})
	}

	check("docker config auth", map[string]string{"HOME": w.n.Home}, "", nil, w.private, "")
	check("anonymous public repository", noCreds(), "", nil, w.public, "")
	check("anonymous private repository refused", noCreds(), "", nil, w.private,
		"registry "+host+" requires authentication (401) and no credential is configured for it: log in with `docker login "+host+"`")
	check("identitytoken refresh token", withConfig(map[string]any{"auths": map[string]any{
		host: map[string]string{
			"auth":          base64.StdEncoding.EncodeToString([]byte("00000000-0000-0000-0000-000000000000:")),
			"identitytoken": w.refresh,
		}}}), "", nil, w.private, "")
	check("wrong refresh token", withConfig(map[string]any{"auths": map[string]any{
		host: map[string]string{"identitytoken": "eyJwrong"}}}), "", nil, w.private, "refused the credentials (401)")
	check("password-stdin", noCreds(), w.pass+"\n", []string{"--username", w.user, "--password-stdin"}, w.private, "")
	refusedBefore := w.issuer.Refused()
	check("wrong password", noCreds(), "wrong-pa55\n", []string{"--username", w.user, "--password-stdin"}, w.private,
		"registry "+host+" requires authentication or refused the credentials (401): log in with `docker login "+host+"` or `notation login "+host+"`, or pass --username and --password-stdin")
	if n := w.issuer.Refused() - refusedBefore; n != 1 {
		t.Errorf("the token service refused %d requests for one wrong password, want 1 (never asked again)", n)
	}
	notationEnv := noCreds()
	notationEnv["NOTATION_USERNAME"], notationEnv["NOTATION_PASSWORD"] = w.user, w.pass
	check("NOTATION_USERNAME and NOTATION_PASSWORD", notationEnv, "", nil, w.private, "")
	notationEnv = noCreds()
	notationEnv["NOTATION_PASSWORD"] = w.refresh
	check("NOTATION_PASSWORD alone is an identity token", notationEnv, "", nil, w.private, "")

	t.Run("text -v counts", func(t *testing.T) {
		status, out, errOut := runVerifyCmd(t, map[string]string{"HOME": w.n.Home}, "", "--policy", w.policy, "--trust-store", w.store,
			"--insecure-registry", host, "-v", w.private, w.unsigned)
		w.checkNoSecret(t, out, errOut)
		want := "\nregistry " + host + ": "
		if status != exitFailure || !strings.Contains(out, want) || !strings.HasSuffix(out, ", 1 token request\n") {
			t.Errorf("status %d, want a last line %q...\", 1 token request\"\n%s%s", status, want, out, errOut)
		}
	})

	helperJSON := fmt.Sprintf(`cat >/dev/null; printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}'`, host, w.user, w.pass)
	env := withConfig(map[string]any{"credHelpers": map[string]string{host: "kwtest"}})
	env["PATH"] = writeHelper(t, "kwtest", helperJSON) + ":" + sysPath
	check("credHelpers", env, "", nil, w.private, "")
	env = withConfig(map[string]any{"credsStore": "kwstore"})
	env["PATH"] = writeHelper(t, "kwstore", fmt.Sprintf(`cat >/dev/null; printf '{"Username":"<token>","Secret":"%s"}'`, w.refresh)) + ":" + sysPath
	check("credsStore with an identity token", env, "", nil, w.private, "")
	env = withConfig(map[string]any{"credsStore": "kwgarbage"})
	env["PATH"] = writeHelper(t, "kwgarbage", `echo "`+w.pass+` is not JSON"`) + ":" + sysPath
	check("helper printing garbage", env, "", nil, w.private, "credential helper docker-credential-kwgarbage (credsStore of "+filepath.Join(env["DOCKER_CONFIG"], "config.json")+") for registry "+host+": printed something that is not a JSON credential object")
	env = withConfig(map[string]any{"credsStore": "kwhang"})
	env["PATH"] = writeHelper(t, "kwhang", `sleep 120`) + ":" + sysPath
	check("helper that hangs", env, "", nil, w.private, "did not answer within 10s and was stopped")
	env = withConfig(map[string]any{"credsStore": "kwflood"})
	env["PATH"] = writeHelper(t, "kwflood", `yes `+w.pass) + ":" + sysPath
	check("helper printing without end", env, "", nil, w.private, "printed more than 65536 bytes")
	env = withConfig(map[string]any{"credsStore": "kwmissing"})
	check("helper not on PATH", env, "", nil, w.private, "docker-credential-kwmissing is not on PATH")

	// notation verify gives the same verdicts through the same registry.
	for _, ref := range []string{w.private, w.public, w.unsigned} {
		_, _, nerr := w.n.Run(t, "verify", "--insecure-registry", ref)
		status, out, errOut := runVerifyCmd(t, map[string]string{"HOME": w.n.Home}, "", "--policy", w.policy, "--trust-store", w.store, "--insecure-registry", host, ref)
		w.checkNoSecret(t, out, errOut)
		if (nerr == nil) != (status == exitOK) {
			t.Errorf("%s: notation verify error %v, keyward status %d\n%s%s", ref, nerr, status, out, errOut)
		}
	}
}

// TestVerifyTokenRequests checks that a token is asked once per repository
// scope: 200 artifacts in 10 repositories cost 10 token requests.
func TestVerifyTokenRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 200 artifacts")
	}
	issuer := testenv.StartTokenIssuer(t, testenv.TokenIssuerOptions{Users: map[string]string{"u": "p4ss-word"}})
	reg := testenv.StartDistributionWithTokenAuth(t, issuer, "u", "p4ss-word")
	var refs []string
	for i := range 200 {
		ref, _ := testenv.PushArtifact(t, reg, fmt.Sprintf("count/repo%d", i%10))
		refs = append(refs, ref)
	}
	list := testpki.WriteFile(t, t.TempDir(), "refs.txt", []byte(strings.Join(refs, "\n")), 0o644)
	policy := newSignedWorld(t).policy(t, "count", "*", "strict", cmdIdentity)
	before := issuer.Requests()
	status, out, errOut := runVerifyCmd(t, map[string]string{"HOME": t.TempDir()}, "p4ss-word\n",
		"--policy", policy, "--trust-store", t.TempDir(), "--insecure-registry", reg.Host, "-o", "json", "-v", "--username", "u", "--password-stdin", "--from-file", list)
	if status != exitFailure { // unsigned: no-signature, after resolving and listing
		t.Fatalf("status %d\n%s", status, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	decodeLines(t, out)
	if len(lines) != 201 {
		t.Fatalf("%d lines, want 200 results and a summary", len(lines))
	}
	for _, l := range lines[:200] {
		if !strings.Contains(l, `"kind":"no-signature"`) {
			t.Fatalf("want no-signature for every artifact, got %s", l)
		}
	}
	var summary statsLine
	if err := json.Unmarshal([]byte(lines[200]), &summary); err != nil || len(summary.Registries) != 1 {
		t.Fatalf("summary %s: %v", lines[200], err)
	}
	got := summary.Registries[0]
	if got.Registry != reg.Host || got.TokenRequests != 10 {
		t.Errorf("summary %+v, want 10 token requests to %s", got, reg.Host)
	}
	if n := issuer.Requests() - before; n != 10 {
		t.Errorf("the token service answered %d requests, want 10", n)
	}
	t.Logf("%d requests for 200 artifacts (%.2f per artifact), %d token requests", got.Requests, float64(got.Requests)/200, got.TokenRequests)
	_ = oci.RegistryStats{}
}
