package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	keyward "github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

// runVerifyCmd runs keyward in-process with stdin and an environment.
func runVerifyCmd(t *testing.T, environ map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := run(append([]string{"verify"}, args...), strings.NewReader(stdin), &out, &errb, func(k string) string { return environ[k] })
	return status, out.String(), errb.String()
}

func TestVerifyUsage(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no reference", nil, "no reference to verify"},
		{"layout without scope", []string{"--oci-layout", "x@sha256:00"}, "--oci-layout needs --scope"},
		{"scope without layout", []string{"--scope", "local/x", "r/x:1"}, "only with --oci-layout"},
		{"bad scope", []string{"--oci-layout", "--scope", "Local/X", "x:1"}, "--scope"},
		{"username without password-stdin", []string{"--username", "u", "r/x:1"}, "go together"},
		{"password-stdin and references on stdin", []string{"--username", "u", "--password-stdin", "--from-file", "-"}, "both read standard input"},
		{"bad output", []string{"-o", "yaml", "r/x:1"}, "--output"},
		{"bad metadata", []string{"-m", "novalue", "r/x:1"}, "key=value"},
		{"zero max signatures", []string{"--max-signatures", "0", "r/x:1"}, "greater than 0"},
		{"registry flag with a layout", []string{"--oci-layout", "--scope", "local/x", "--plain-http", "x:1"}, "do not apply with --oci-layout"},
		{"unknown flag", []string{"--nope", "r/x:1"}, "unknown flag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, errOut := runVerifyCmd(t, env, "", tc.args...)
			if status != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Errorf("status %d, stderr %q; want %d and %q", status, errOut, exitUsage, tc.want)
			}
		})
	}
}

// signedWorld is a notation configuration with the keyward plugin, a CA in
// a trust store, and a signing key, for signing test artifacts.
type signedWorld struct {
	n        *testenv.Notation
	keyID    string
	chain    string
	store    string // trust store folder, as --trust-store takes it
	policies string // folder for policy files
}

func newSignedWorld(t *testing.T) *signedWorld {
	t.Helper()
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	root := testpki.Root(t, "verify cmd root")
	key := testpki.Key(t, "EC-256", "verify cmd")
	leaf := root.Leaf(t, "verify cmd signer", testpki.WithKey(key))
	n.AddTrustStore(t, "ca", "cmd", root.Cert)
	return &signedWorld{
		n:        n,
		keyID:    "file:" + testpki.WriteFile(t, dir, "key.pem", testpki.KeyPEM(t, key), 0o600),
		chain:    testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644),
		store:    filepath.Join(n.ConfigDir, "truststore"),
		policies: t.TempDir(),
	}
}

// sign signs with the plugin; extra are notation's target arguments.
func (w *signedWorld) sign(t *testing.T, extra ...string) {
	t.Helper()
	args := []string{"sign", "--plugin", "keyward", "--id", w.keyID, "--plugin-config", "cert_chain=" + w.chain}
	w.n.MustRun(t, append(args, extra...)...)
}

// pushSigned pushes a fresh artifact to repo in reg and signs it with the
// plugin, through the referrers API where reg serves it; it returns
// host/repo@digest.
func (w *signedWorld) pushSigned(t *testing.T, reg *testenv.Registry, repo string) string {
	t.Helper()
	ref, _ := testenv.PushArtifact(t, reg, repo)
	args := []string{"--insecure-registry", ref}
	if reg.Referrers {
		args = append([]string{"--force-referrers-tag=false"}, args...)
	}
	w.sign(t, args...)
	return ref
}

// policy writes a one-statement policy and returns its path.
func (w *signedWorld) policy(t *testing.T, name, scope, level, identity string) string {
	t.Helper()
	st := map[string]any{"name": name, "registryScopes": []string{scope}, "signatureVerification": map[string]string{"level": level}}
	if level != "skip" {
		st["trustStores"] = []string{"ca:cmd"}
		st["trustedIdentities"] = []string{identity}
	}
	b, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{st}})
	return testpki.WriteFile(t, w.policies, name+".json", b, 0o644)
}

const cmdIdentity = "x509.subject: C=US, ST=WA, O=keyward-test, CN=verify cmd signer"

var (
	schemaOnce sync.Once
	schema     *jsonschema.Schema
	schemaErr  error
)

// decodeLines decodes JSON Lines output, validating each line against the
// published schema.
func decodeLines(t *testing.T, out string) []verify.ReferenceResult {
	t.Helper()
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		if schemaErr = c.AddResource("verify-result.schema.json", bytes.NewReader(keyward.VerifyResultSchema())); schemaErr == nil {
			schema, schemaErr = c.Compile("verify-result.schema.json")
		}
	})
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	var results []verify.ReferenceResult
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var v any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("line %q is not JSON: %v", line, err)
		}
		if err := schema.Validate(v); err != nil {
			t.Fatalf("line does not match verify-result.schema.json: %v\n%s", err, line)
		}
		var r verify.ReferenceResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	return results
}

// TestVerifyLayout verifies OCI layouts signed by notation through the
// plugin: pass, identity mismatch, skip without reading anything, and a
// statement that does not apply.
func TestVerifyLayout(t *testing.T) {
	w := newSignedWorld(t)
	layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	w.sign(t, "--oci-layout", layout+"@"+digest)
	env := map[string]string{"HOME": w.n.Home}
	good := w.policy(t, "good", "local/app", "strict", cmdIdentity)
	other := w.policy(t, "other", "local/app", "strict", "x509.subject: C=US, ST=WA, O=keyward-test, CN=someone else")
	auditOther := w.policy(t, "audit", "local/app", "audit", "x509.subject: C=US, ST=WA, O=keyward-test, CN=someone else")
	skip := w.policy(t, "skip", "local/app", "skip", "")
	base := []string{"--trust-store", w.store, "--oci-layout", "--scope", "local/app", "-o", "json"}

	status, out, errOut := runVerifyCmd(t, env, "", append(append([]string{"--policy", good}, base...), layout+"@"+digest, layout+":"+testenv.LayoutTag)...)
	if status != exitOK {
		t.Fatalf("status %d\n%s%s", status, out, errOut)
	}
	rs := decodeLines(t, out)
	if len(rs) != 2 {
		t.Fatalf("%d result lines, want 2", len(rs))
	}
	for _, r := range rs {
		if !r.Verified || r.Statement != "good" || r.Artifact == nil || r.Artifact.Digest.String() != digest || len(r.Signatures) != 1 {
			t.Errorf("result %+v", r)
		}
		if strings.HasSuffix(r.Reference, ":"+testenv.LayoutTag) && r.Tag != testenv.LayoutTag {
			t.Errorf("a tag reference must report its tag: %+v", r)
		}
		if s := r.Signatures[0]; s.Signer == nil || !strings.Contains(s.Signer.Subject, "CN=verify cmd signer") || len(s.Signer.Chain) != 2 {
			t.Errorf("signer %+v", s.Signer)
		}
	}

	status, out, _ = runVerifyCmd(t, env, "", append(append([]string{"--policy", other}, base...), layout+"@"+digest)...)
	rs = decodeLines(t, out)
	if status != exitFailure || rs[0].Verified || rs[0].Error == nil || rs[0].Error.Kind != "verification-failed" {
		t.Fatalf("identity mismatch: status %d, %+v", status, rs[0])
	}
	if s := rs[0].Signatures[0]; s.FailedCheck != "trustedIdentity" || !strings.Contains(rs[0].Error.Message, "signature verification failed") {
		t.Errorf("identity mismatch: failed check %q, error %q", s.FailedCheck, rs[0].Error.Message)
	}

	// At audit the mismatch is logged: the artifact verifies, text output
	// says so and prints the logged failure as a warning.
	status, out, _ = runVerifyCmd(t, env, "", "--policy", auditOther, "--trust-store", w.store, "--oci-layout", "--scope", "local/app", layout+"@"+digest)
	if status != exitOK || !strings.HasPrefix(out, "VERIFIED") || !strings.Contains(out, "warning: trustedIdentity") {
		t.Errorf("audit: status %d, output %q", status, out)
	}

	// Skip reads nothing: a layout that does not exist still passes.
	status, out, _ = runVerifyCmd(t, env, "", append(append([]string{"--policy", skip}, base...), "/nonexistent/layout@"+digest)...)
	rs = decodeLines(t, out)
	if status != exitOK || !rs[0].Skipped || !rs[0].Verified || rs[0].Artifact != nil {
		t.Errorf("skip: status %d, %+v", status, rs[0])
	}

	status, out, _ = runVerifyCmd(t, env, "", "--policy", good, "--trust-store", w.store, "--oci-layout", "--scope", "local/other", "-o", "json", layout+"@"+digest)
	rs = decodeLines(t, out)
	if status != exitFailure || rs[0].Error == nil || rs[0].Error.Kind != "policy" || !strings.Contains(rs[0].Error.Message, "has no applicable trust policy statement") {
		t.Errorf("no statement: status %d, %+v", status, rs[0])
	}

	// -v prints every check of the signature.
	status, out, _ = runVerifyCmd(t, env, "", "-v", "--policy", good, "--trust-store", w.store, "--oci-layout", "--scope", "local/app", layout+"@"+digest)
	for _, c := range []string{"integrity", "authenticity", "trustedIdentity", "expiry", "authenticTimestamp", "revocation", "targetArtifact", "userMetadata"} {
		if !strings.Contains(out, "    "+c) {
			t.Errorf("-v output lacks check %s:\n%s", c, out)
		}
	}
	if status != exitOK {
		t.Errorf("-v status %d", status)
	}
}

// TestVerifyRegistries verifies a batch across olareg (referrers API) and
// distribution (tag fallback), by tag and by digest, from arguments and
// --from-file, with one unsigned artifact and one unknown repository that
// fail without stopping the others.
func TestVerifyRegistries(t *testing.T) {
	w := newSignedWorld(t)
	olareg, dist := testenv.StartOlareg(t), testenv.StartDistribution(t)
	refs := []string{w.pushSigned(t, olareg, "team/app"), w.pushSigned(t, dist, "team/app")}
	unsigned, _ := testenv.PushArtifact(t, dist, "team/app")
	missing := dist.Host + "/team/nothing:v1"
	policy, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{map[string]any{
		"name": "all", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "strict"},
		"trustStores": []string{"ca:cmd"}, "trustedIdentities": []string{cmdIdentity}}}})
	policyFile := testpki.WriteFile(t, w.policies, "all.json", policy, 0o644)
	list := testpki.WriteFile(t, t.TempDir(), "refs.txt", []byte("# references\n"+refs[1]+"\n\n"+unsigned+"\n"+missing+"\n"), 0o644)

	env := map[string]string{"HOME": w.n.Home}
	status, out, errOut := runVerifyCmd(t, env, "", "--policy", policyFile, "--trust-store", w.store,
		"--insecure-registry", olareg.Host, "--insecure-registry", dist.Host, "-o", "json", "--concurrency", "3",
		"--from-file", list, refs[0])
	if status != exitFailure {
		t.Fatalf("status %d, want 1 (one unsigned, one missing)\n%s%s", status, out, errOut)
	}
	byRef := map[string]verify.ReferenceResult{}
	for _, r := range decodeLines(t, out) {
		byRef[r.Reference] = r
	}
	if len(byRef) != 4 {
		t.Fatalf("%d results, want 4:\n%s", len(byRef), out)
	}
	for _, ref := range refs {
		if r := byRef[ref]; !r.Verified || len(r.Signatures) != 1 || !r.Signatures[0].Passed {
			t.Errorf("%s: %+v", ref, r)
		}
	}
	if r := byRef[unsigned]; r.Verified || r.Error == nil || r.Error.Kind != "no-signature" ||
		!strings.Contains(r.Error.Message, "no signature is associated with") {
		t.Errorf("unsigned: %+v", r)
	}
	if r := byRef[missing]; r.Verified || r.Error == nil || r.Error.Kind != "resolve" || !strings.Contains(r.Error.Message, "not found") {
		t.Errorf("missing: %+v", r.Error)
	}

	// A tag is resolved and reported; text output is one line a reference.
	tagRef := strings.Split(refs[0], "@")[0] + ":latest"
	testenv.PushArtifact(t, olareg, "team/tagged")
	status, out, _ = runVerifyCmd(t, env, "", "--policy", policyFile, "--trust-store", w.store, "--plain-http", tagRef, refs[0])
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 {
		t.Errorf("text output has %d lines for 2 references:\n%s", len(lines), out)
	}
	if status != exitFailure {
		t.Errorf("status %d: the :latest tag does not exist in team/app", status)
	}
}

// TestVerifyPasswordStdin checks that --password-stdin reads the password
// from standard input and never prints it.
func TestVerifyPasswordStdin(t *testing.T) {
	dir := t.TempDir()
	p := testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}`), 0o644)
	status, out, errOut := runVerifyCmd(t, map[string]string{"HOME": dir}, "s3cret-pa55\n",
		"--policy", p, "--trust-store", dir, "--username", "me", "--password-stdin", "--plain-http", "127.0.0.1:1/app:v1")
	if status != exitFailure {
		t.Errorf("status %d", status)
	}
	if strings.Contains(out+errOut, "s3cret-pa55") {
		t.Errorf("the password was printed:\n%s%s", out, errOut)
	}
	if !strings.Contains(out, "cannot reach registry 127.0.0.1:1") {
		t.Errorf("output %q", out)
	}
	status, _, errOut = runVerifyCmd(t, map[string]string{"HOME": dir}, "", "--policy", p, "--username", "me", "--password-stdin", "r/x:1")
	if status != exitUsage || !strings.Contains(errOut, "standard input is empty") {
		t.Errorf("empty stdin: status %d %q", status, errOut)
	}
}

func TestVerifyPrintSchema(t *testing.T) {
	status, out, _ := runVerifyCmd(t, nil, "", "--print-schema")
	if status != exitOK || out != string(keyward.VerifyResultSchema()) {
		t.Errorf("status %d, output differs from verify-result.schema.json", status)
	}
	root, err := os.ReadFile("../../verify-result.schema.json")
	if err != nil || !bytes.Equal(root, keyward.VerifyResultSchema()) {
		t.Errorf("embedded schema differs from the repository's file: %v", err)
	}
}

// TestVerifyCredentials verifies in a registry that requires basic
// authentication: with the credentials `docker login` stores in
// ~/.docker/config.json when no credential helper is configured (notation
// signs with them too; `notation login` itself insists on a helper), with --username and --password-stdin, and,
// failing with a message that says what to do, with a wrong password and
// with none. The password never appears in the output.
func TestVerifyCredentials(t *testing.T) {
	w := newSignedWorld(t)
	const user, password = "keyward", "s3cret-login-pa55"
	reg := testenv.StartDistributionWithAuth(t, user, password)
	dockerConfig, _ := json.Marshal(map[string]any{"auths": map[string]any{
		reg.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
	if err := os.MkdirAll(filepath.Join(w.n.Home, ".docker"), 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, filepath.Join(w.n.Home, ".docker"), "config.json", dockerConfig, 0o600)
	ref, _ := testenv.PushArtifact(t, reg, "locked/app")
	w.sign(t, "--insecure-registry", ref)
	policy := w.policy(t, "locked", reg.Host+"/locked/app", "strict", cmdIdentity)
	args := []string{"--policy", policy, "--trust-store", w.store, "--insecure-registry", reg.Host, "-o", "json"}
	noCredentials := map[string]string{"HOME": t.TempDir()}

	check := func(name string, env map[string]string, stdin string, extra []string, wantStatus int, wantMessage string) {
		t.Run(name, func(t *testing.T) {
			status, out, errOut := runVerifyCmd(t, env, stdin, append(append(append([]string(nil), args...), extra...), ref)...)
			if strings.Contains(out+errOut, password) || strings.Contains(out+errOut, "wrong-pa55") {
				t.Fatalf("a password was printed:\n%s%s", out, errOut)
			}
			if status != wantStatus {
				t.Fatalf("status %d, want %d\n%s%s", status, wantStatus, out, errOut)
			}
			rs := decodeLines(t, out)
			if wantMessage == "" {
				if !rs[0].Verified {
					t.Errorf("not verified: %+v", rs[0])
				}
				return
			}
			if rs[0].Verified || rs[0].Error == nil || !strings.Contains(rs[0].Error.Message, wantMessage) {
				t.Errorf("error %+v, want a message with %q", rs[0].Error, wantMessage)
			}
		})
	}
	check("docker credential store", map[string]string{"HOME": w.n.Home}, "", nil, exitOK, "")
	check("password-stdin", noCredentials, password+"\n", []string{"--username", user, "--password-stdin"}, exitOK, "")
	check("wrong password", noCredentials, "wrong-pa55\n", []string{"--username", user, "--password-stdin"}, exitFailure,
		"registry "+reg.Host+" requires authentication or refused the credentials (401): log in with `docker login "+reg.Host+"`")
	check("no credentials", noCredentials, "", nil, exitFailure,
		"registry "+reg.Host+" requires authentication (401) and no credential is configured for it")
}

// TestVerifyNotationDefaults checks that without --policy and
// --trust-store keyward verify reads notation's own trust policy and trust
// store, from {NOTATION_CONFIG} as notation finds it: $NOTATION_CONFIG, else
// $XDG_CONFIG_HOME/notation.
func TestVerifyNotationDefaults(t *testing.T) {
	w := newSignedWorld(t)
	layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	w.sign(t, "--oci-layout", layout+"@"+digest)
	doc, err := os.ReadFile(w.policy(t, "defaults", "local/app", "strict", cmdIdentity))
	if err != nil {
		t.Fatal(err)
	}
	w.n.SetTrustPolicy(t, doc)
	w.n.MustRun(t, "verify", "--oci-layout", "--scope", "local/app", layout+"@"+digest)
	for name, env := range map[string]map[string]string{
		"NOTATION_CONFIG": {"HOME": t.TempDir(), "NOTATION_CONFIG": w.n.ConfigDir},
		"XDG_CONFIG_HOME": {"HOME": t.TempDir(), "XDG_CONFIG_HOME": filepath.Dir(w.n.ConfigDir)},
	} {
		t.Run(name, func(t *testing.T) {
			status, out, errOut := runVerifyCmd(t, env, "", "--oci-layout", "--scope", "local/app", "-o", "json", layout+"@"+digest)
			if status != exitOK {
				t.Fatalf("status %d\n%s%s", status, out, errOut)
			}
			if r := decodeLines(t, out)[0]; !r.Verified || r.Statement != "defaults" {
				t.Errorf("result %+v", r)
			}
		})
	}
	status, _, errOut := runVerifyCmd(t, map[string]string{"HOME": t.TempDir()}, "", "--oci-layout", "--scope", "local/app", layout+"@"+digest)
	if status != exitFailure || !strings.Contains(errOut, "trustpolicy.json: trust policy is not present") {
		t.Errorf("without notation's configuration: status %d, stderr %q; want notation's message naming the missing trustpolicy.json", status, errOut)
	}
}

// TestVerifyTLS verifies in a registry that serves HTTPS with a
// certificate from a private CA: --ca-file trusts it; without it the
// reference fails with a message that names --ca-file.
func TestVerifyTLS(t *testing.T) {
	w := newSignedWorld(t)
	reg := testenv.StartDistributionTLS(t)
	ref, _ := testenv.PushArtifact(t, reg, "private/app")
	// notation has no CA flag; Go's TLS reads SSL_CERT_FILE instead of the
	// system roots.
	w.n.Env = append(w.n.Env, "SSL_CERT_FILE="+reg.CAFile)
	w.sign(t, ref)
	policy := w.policy(t, "tls", reg.Host+"/private/app", "strict", cmdIdentity)
	env := map[string]string{"HOME": w.n.Home}

	status, out, errOut := runVerifyCmd(t, env, "", "--policy", policy, "--trust-store", w.store, "--ca-file", reg.CAFile, "-o", "json", ref)
	if status != exitOK {
		t.Fatalf("with --ca-file: status %d\n%s%s", status, out, errOut)
	}
	if r := decodeLines(t, out)[0]; !r.Verified || len(r.Signatures) != 1 {
		t.Errorf("with --ca-file: %+v", r)
	}

	status, out, _ = runVerifyCmd(t, env, "", "--policy", policy, "--trust-store", w.store, "-o", "json", ref)
	r := decodeLines(t, out)[0]
	if status != exitFailure || r.Verified || r.Error == nil ||
		!strings.Contains(r.Error.Message, "registry "+reg.Host+" presented a TLS certificate issued by a CA this machine does not trust: pass --ca-file") {
		t.Errorf("without --ca-file: status %d, error %+v", status, r.Error)
	}

	status, _, errOut = runVerifyCmd(t, env, "", "--policy", policy, "--ca-file", filepath.Join(t.TempDir(), "none.pem"), ref)
	if status != exitUsage || !strings.Contains(errOut, "--ca-file") {
		t.Errorf("missing --ca-file: status %d, stderr %q", status, errOut)
	}
}

// TestVerifyPasswordStdinBound refuses a password over its bound instead of
// truncating it, and never prints it.
func TestVerifyPasswordStdinBound(t *testing.T) {
	dir := t.TempDir()
	p := testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}`), 0o644)
	long := strings.Repeat("p", maxPassword+1)
	status, out, errOut := runVerifyCmd(t, map[string]string{"HOME": dir}, long,
		"--policy", p, "--trust-store", dir, "--username", "me", "--password-stdin", "--plain-http", "127.0.0.1:1/app:v1")
	if status != exitUsage || !strings.Contains(errOut, "longer than 65536 bytes") {
		t.Errorf("status %d, stderr %q", status, errOut)
	}
	if strings.Contains(out+errOut, long[:64]) {
		t.Error("the password was printed")
	}
	// Exactly at the bound it is accepted (the registry is unreachable).
	status, out, _ = runVerifyCmd(t, map[string]string{"HOME": dir}, long[:maxPassword],
		"--policy", p, "--trust-store", dir, "--username", "me", "--password-stdin", "--plain-http", "127.0.0.1:1/app:v1")
	if status != exitFailure || !strings.Contains(out, "cannot reach registry") {
		t.Errorf("at the bound: status %d, %q", status, out)
	}
}

// TestVerifyCRLBundleFlag: --crl-bundle must be a regular file holding
// CRLs; anything else is a usage error that names the file and says what
// is wanted, before any reference is read.
func TestVerifyCRLBundleFlag(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": dir}
	policyFile := filepath.Join(dir, "trustpolicy.json")
	doc := `{"version":"1.0","trustPolicies":[{"name":"all","registryScopes":["*"],"signatureVerification":{"level":"skip"},"trustStores":[],"trustedIdentities":[]}]}`
	if err := os.WriteFile(policyFile, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a CRL"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", missing, "--crl-bundle " + missing + ": no such file"},
		{"directory", dir, "--crl-bundle " + dir + " is not a regular file"},
		{"fifo", fifo, "--crl-bundle " + fifo + " is not a regular file"},
		{"no CRL in it", garbage, "--crl-bundle " + garbage + `: holds no CRL (PEM "X509 CRL" blocks or one DER CRL)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out, errOut := runVerifyCmd(t, env, "", "--policy", policyFile, "--crl-bundle", tc.path, "127.0.0.1:1/app@sha256:"+strings.Repeat("0", 64))
			if status != exitUsage || !strings.Contains(errOut, tc.want) || out != "" {
				t.Errorf("status %d, stdout %q, stderr %q; want %d and %q", status, out, errOut, exitUsage, tc.want)
			}
		})
	}
	status, out, _ := runVerifyCmd(t, env, "", "--help")
	if status != 0 || !strings.Contains(out, "--crl-bundle") {
		t.Errorf("--help: status %d, it does not describe --crl-bundle:\n%s", status, out)
	}
}

// TestVerifyPasswordStdinOneRegistry refuses --password-stdin for
// references naming two registries: the password would reach both.
func TestVerifyPasswordStdinOneRegistry(t *testing.T) {
	dir := t.TempDir()
	p := testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"strict"},"trustStores":["ca:x"],"trustedIdentities":["*"]}]}`), 0o644)
	status, out, errOut := runVerifyCmd(t, map[string]string{"HOME": dir}, "s3cret-pa55\n",
		"--policy", p, "--trust-store", dir, "--username", "me", "--password-stdin", "--plain-http", "127.0.0.1:1/app:v1", "127.0.0.1:2/app:v1")
	if status != exitUsage || !strings.Contains(errOut, "name 2 registries (127.0.0.1:1, 127.0.0.1:2)") || strings.Contains(out+errOut, "s3cret") {
		t.Errorf("status %d, stderr %q", status, errOut)
	}
}
