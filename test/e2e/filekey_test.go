// Package e2e holds end-to-end tests: the real notation CLI v1.3.2 drives the
// real notation-keyward binary against an OCI image layout and registry
// processes on 127.0.0.1, with and without the OCI 1.1 referrers API.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
)

// signer is a file key with its chain on disk.
type signer struct {
	spec, keyID, chain string
}

func newSigner(t *testing.T, dir string, ca *testpki.Cert, spec, cn string) signer {
	t.Helper()
	key := testpki.Key(t, spec, "e2e "+cn)
	leaf := ca.Leaf(t, cn, testpki.WithKey(key))
	return signer{
		spec:  spec,
		keyID: "file:" + testpki.WriteFile(t, dir, cn+".key", testpki.KeyPEM(t, key), 0o600),
		chain: testpki.WriteFile(t, dir, cn+".chain.pem", testpki.CertsPEM(leaf.Cert, ca.Cert), 0o644),
	}
}

// target is where an artifact lives: an OCI layout or a registry.
type target struct {
	name string
	reg  *testenv.Registry // nil for the OCI layout
}

// artifact creates a fresh artifact and returns the arguments that name it
// for notation sign and notation verify, and its policy scope.
func (tg target) artifact(t *testing.T, repo string) (signRef, verifyArgs []string, scope string) {
	t.Helper()
	if tg.reg == nil {
		layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
		return []string{"--oci-layout", layout + "@" + digest},
			[]string{"--oci-layout", "--scope", "local/layout", layout + "@" + digest},
			"local/layout"
	}
	ref, _ := testenv.PushArtifact(t, tg.reg, repo)
	sign := []string{"--insecure-registry", ref}
	if tg.reg.Referrers {
		// olareg lists only referrers pushed through its API (infra.md).
		sign = append([]string{"--force-referrers-tag=false"}, sign...)
	}
	return sign, []string{"--insecure-registry", ref}, tg.reg.Host + "/" + repo
}

func policy(scopes []string, identity string) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "1.0",
		"trustPolicies": []map[string]any{{
			"name":                  "e2e",
			"registryScopes":        scopes,
			"signatureVerification": map[string]string{"level": "strict"},
			"trustStores":           []string{"ca:e2e"},
			"trustedIdentities":     []string{identity},
		}},
	})
	return b
}

const identity = "x509.subject: C=US, ST=WA, L=Seattle, O=keyward-test"

// TestSignVerifyFileKeys signs with notation sign --plugin keyward and
// verifies with notation verify, for every key spec the issue names, both
// envelope formats, both signing modes and three storage targets.
func TestSignVerifyFileKeys(t *testing.T) {
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	targets := []target{
		{name: "oci-layout"},
		{name: "olareg-referrers-api", reg: testenv.StartOlareg(t)},
		{name: "distribution-tag-fallback", reg: testenv.StartDistribution(t)},
	}
	root := testpki.Root(t, "e2e root")
	n.AddTrustStore(t, "ca", "e2e", root.Cert)
	dir := t.TempDir()
	var scopes []string
	for _, tg := range targets {
		if tg.reg == nil {
			scopes = append(scopes, "local/layout")
		} else {
			scopes = append(scopes, tg.reg.Host+"/e2e/file")
		}
	}
	n.SetTrustPolicy(t, policy(scopes, identity))

	for _, spec := range []string{"EC-256", "EC-384", "RSA-3072"} {
		s := newSigner(t, dir, root, spec, "signer "+spec)
		for _, format := range []string{"jws", "cose"} {
			for _, mode := range []string{"raw", "envelope"} {
				for _, tg := range targets {
					t.Run(strings.Join([]string{spec, format, mode, tg.name}, "/"), func(t *testing.T) {
						signRef, verifyArgs, _ := tg.artifact(t, "e2e/file")
						args := []string{"sign", "--plugin", "keyward", "--id", s.keyID,
							"--plugin-config", "cert_chain=" + s.chain, "--signature-format", format}
						if mode == "envelope" {
							args = append(args, "--plugin-config", "signing_mode=envelope")
						}
						n.MustRun(t, append(args, signRef...)...)
						out := n.MustRun(t, append([]string{"verify"}, verifyArgs...)...)
						if !strings.Contains(out, "Successfully verified") {
							t.Errorf("notation verify printed %q", out)
						}
						if tg.reg != nil {
							checkSignatureManifest(t, n, tg, verifyArgs[len(verifyArgs)-1], format, mode)
						}
					})
				}
			}
		}
	}
}

// checkSignatureManifest inspects what landed in the registry: the envelope
// format asked for, the signing agent of the mode (notation's for RAW,
// keyward's for ENVELOPE), and the discovery mechanism of the registry.
func checkSignatureManifest(t *testing.T, n *testenv.Notation, tg target, ref, format, mode string) {
	t.Helper()
	out := n.MustRun(t, "inspect", "--insecure-registry", "-o", "json", ref)
	var inspect struct {
		Signatures []struct {
			MediaType          string `json:"mediaType"`
			UnsignedAttributes map[string]string
		} `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(out), &inspect); err != nil {
		t.Fatalf("notation inspect -o json: %v\n%s", err, out)
	}
	if len(inspect.Signatures) != 1 {
		t.Fatalf("notation inspect found %d signatures, want 1", len(inspect.Signatures))
	}
	sig := inspect.Signatures[0]
	wantType := map[string]string{"jws": "application/jose+json", "cose": "application/cose"}[format]
	if sig.MediaType != wantType {
		t.Errorf("signature media type %q, want %q", sig.MediaType, wantType)
	}
	agent := sig.UnsignedAttributes["signingAgent"]
	if mode == "envelope" && !strings.HasPrefix(agent, "keyward/") {
		t.Errorf("ENVELOPE mode signature has signing agent %q, want keyward's", agent)
	}
	if mode == "raw" && !strings.HasPrefix(agent, "notation-go/") {
		t.Errorf("RAW mode signature has signing agent %q, want notation's", agent)
	}
	repo, digest, _ := strings.Cut(strings.TrimPrefix(ref, tg.reg.Host+"/"), "@")
	if tg.reg.Referrers {
		body := httpGet(t, fmt.Sprintf("http://%s/v2/%s/referrers/%s", tg.reg.Host, repo, digest))
		if !strings.Contains(body, "application/vnd.cncf.notary.signature") {
			t.Errorf("referrers API does not list the signature: %s", body)
		}
	} else {
		tag := strings.Replace(digest, ":", "-", 1)
		httpGet(t, fmt.Sprintf("http://%s/v2/%s/manifests/%s", tg.reg.Host, repo, tag))
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, b)
	}
	return string(b)
}

// TestVerifyRejects checks that signatures made through the plugin are not
// trusted beyond the policy: an identity that does not match, and a chain
// whose root is not in the trust store, both make notation verify fail.
func TestVerifyRejects(t *testing.T) {
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	trusted := testpki.Root(t, "e2e trusted root")
	untrusted := testpki.Root(t, "e2e untrusted root")
	n.AddTrustStore(t, "ca", "e2e", trusted.Cert)
	good := newSigner(t, dir, trusted, "EC-256", "good signer")
	stranger := newSigner(t, dir, untrusted, "EC-256", "stranger")
	tg := target{name: "oci-layout"}

	for _, tc := range []struct {
		name     string
		signer   signer
		identity string
		want     string
	}{
		{"identity mismatch", good, "x509.subject: C=US, ST=WA, O=keyward-test, CN=somebody else",
			"does not match the X.509 trusted identities"},
		{"chain not in trust store", stranger, identity,
			"the signature's certificate chain does not contain any trusted certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signRef, verifyArgs, scope := tg.artifact(t, "")
			n.SetTrustPolicy(t, policy([]string{scope}, tc.identity))
			n.MustRun(t, append([]string{"sign", "--plugin", "keyward", "--id", tc.signer.keyID,
				"--plugin-config", "cert_chain=" + tc.signer.chain}, signRef...)...)
			stdout, stderr, err := n.Run(t, append([]string{"verify", "-v"}, verifyArgs...)...)
			if err == nil {
				t.Fatalf("notation verify passed, want a failure\n%s", stdout)
			}
			if !strings.Contains(stdout+stderr, tc.want) {
				t.Errorf("notation verify failed with %q, want %q", stdout+stderr, tc.want)
			}
		})
	}
}

// TestSignErrorsReachNotation checks that the plugin's refusals reach the
// user through notation with the plugin's own message.
func TestSignErrorsReachNotation(t *testing.T) {
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	root := testpki.Root(t, "e2e errors root")
	a := newSigner(t, dir, root, "EC-256", "signer a")
	b := newSigner(t, dir, root, "EC-384", "signer b")
	loose := filepath.Join(dir, "loose.key")
	data, err := os.ReadFile(strings.TrimPrefix(a.keyID, "file:"))
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dir, "loose.key", data, 0o644)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"chain of another key", []string{"--id", a.keyID, "--plugin-config", "cert_chain=" + b.chain}, "certifies another key"},
		{"key readable by others", []string{"--id", "file:" + loose, "--plugin-config", "cert_chain=" + a.chain}, "chmod 600"},
		{"missing key file", []string{"--id", "file:" + dir + "/none.key", "--plugin-config", "cert_chain=" + a.chain}, "does not exist"},
		{"misspelt config key", []string{"--id", a.keyID, "--plugin-config", "cert_chain=" + a.chain, "--plugin-config", "signingmode=envelope"}, `"signingmode"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
			args := append([]string{"sign", "--plugin", "keyward"}, tc.args...)
			stdout, stderr, err := n.Run(t, append(args, "--oci-layout", layout+"@"+digest)...)
			if err == nil {
				t.Fatalf("notation sign passed, want a failure\n%s", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("notation sign failed with %q, want the plugin's message containing %q", stderr, tc.want)
			}
		})
	}
}

// TestStoredKey signs through a key stored with notation key add, whose
// plugin config notation passes on every call.
func TestStoredKey(t *testing.T) {
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	root := testpki.Root(t, "e2e stored root")
	s := newSigner(t, dir, root, "EC-384", "stored signer")
	n.AddTrustStore(t, "ca", "e2e", root.Cert)
	n.MustRun(t, "key", "add", "release", "--plugin", "keyward", "--id", s.keyID,
		"--plugin-config", "cert_chain="+s.chain, "--plugin-config", "signing_mode=envelope")
	signRef, verifyArgs, scope := target{name: "oci-layout"}.artifact(t, "")
	n.SetTrustPolicy(t, policy([]string{scope}, identity))
	n.MustRun(t, append([]string{"sign", "--key", "release", "--signature-format", "cose"}, signRef...)...)
	n.MustRun(t, append([]string{"verify"}, verifyArgs...)...)
}
