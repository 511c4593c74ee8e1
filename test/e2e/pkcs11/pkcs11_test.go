//go:build cgo

// Package pkcs11e2e tests PKCS#11 signing end to end: the real notation CLI
// v1.3.2 drives the real notation-keyward binary, whose keys are generated
// on a SoftHSM2 token at test time and never leave it, against an OCI image
// layout and registry processes on 127.0.0.1; notation verify is the judge.
// keyward keys list is checked against the keys the tests create.
package pkcs11e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/keys/pkcs11key/pkcs11test"
)

// rig is notation with keyward installed, a SoftHSM2 token, and a root CA
// in notation's trust store that issues the token keys' certificates.
type rig struct {
	n    *testenv.Notation
	hsm  *testenv.SoftHSM
	tok  pkcs11test.Token
	root *testpki.Cert
	pin  string // PIN file, mode 0600
}

func newRig(t *testing.T) *rig {
	t.Helper()
	hsm := testenv.NewSoftHSM(t, "release")
	// pkcs11test works on the token from this process; SoftHSM reads its
	// configuration from the environment at C_Initialize.
	t.Setenv("SOFTHSM2_CONF", hsm.Conf)
	n := testenv.NewNotation(t)
	n.Env = append(n.Env, "SOFTHSM2_CONF="+hsm.Conf) // only the token config: keep notation isolated
	n.InstallPlugin(t, testenv.PluginBinary(t))
	r := &rig{
		n:    n,
		hsm:  hsm,
		tok:  pkcs11test.Token{Module: hsm.Module, Label: hsm.Label, PIN: hsm.PIN},
		root: testpki.Root(t, "pkcs11 e2e root"),
	}
	r.pin = testpki.WriteFile(t, t.TempDir(), "pin", []byte(hsm.PIN+"\n"), 0o600)
	n.AddTrustStore(t, "ca", "e2e", r.root.Cert)
	return r
}

// addKey generates a key pair on the token, issues its certificate from the
// root and stores the certificate with the key's id. It returns the key id.
func (r *rig) addKey(t *testing.T, spec, label string, id byte) string {
	t.Helper()
	pub := r.tok.GenerateKey(t, spec, label, []byte{id})
	leaf := r.root.Leaf(t, "hsm "+label, testpki.WithPublicKey(pub))
	r.tok.StoreCertificate(t, leaf.Cert, label, []byte{id})
	return r.keyID(label)
}

func (r *rig) keyID(label string) string {
	return fmt.Sprintf("pkcs11:token=%s;object=%s?module-path=%s&pin-source=file:%s",
		url.PathEscape(r.tok.Label), url.PathEscape(label), r.hsm.Module, r.pin)
}

// target is where an artifact lives: an OCI layout or a registry.
type target struct {
	name string
	reg  *testenv.Registry // nil for the OCI layout
}

func (tg target) scope(repo string) string {
	if tg.reg == nil {
		return "local/layout"
	}
	return tg.reg.Host + "/" + repo
}

// artifact creates a fresh artifact and returns the arguments that name it
// for notation sign and for notation verify / inspect.
func (tg target) artifact(t *testing.T, repo string) (signArgs, verifyArgs []string) {
	t.Helper()
	if tg.reg == nil {
		layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
		return []string{"--oci-layout", layout + "@" + digest},
			[]string{"--oci-layout", "--scope", "local/layout", layout + "@" + digest}
	}
	ref, _ := testenv.PushArtifact(t, tg.reg, repo)
	sign := []string{"--insecure-registry", ref}
	if tg.reg.Referrers {
		// olareg lists only referrers pushed through its API (infra.md).
		sign = append([]string{"--force-referrers-tag=false"}, sign...)
	}
	return sign, []string{"--insecure-registry", ref}
}

func policy(scopes []string) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "1.0",
		"trustPolicies": []map[string]any{{
			"name":                  "pkcs11-e2e",
			"registryScopes":        scopes,
			"signatureVerification": map[string]string{"level": "strict"},
			"trustStores":           []string{"ca:e2e"},
			"trustedIdentities":     []string{"x509.subject: C=US, ST=WA, L=Seattle, O=keyward-test"},
		}},
	})
	return b
}

const repo = "e2e/pkcs11"

var algorithms = map[string]string{"EC-256": "ECDSA-SHA-256", "EC-384": "ECDSA-SHA-384", "RSA-3072": "RSASSA-PSS-SHA-384"}

// TestSignVerifyTokenKeys signs with notation sign --plugin keyward --id
// 'pkcs11:...' and verifies with notation verify, for EC-256, EC-384 and
// RSA-3072 token keys, JWS and COSE, RAW and ENVELOPE mode, on an OCI layout
// and on a registry with the referrers API. The chain comes from the token.
func TestSignVerifyTokenKeys(t *testing.T) {
	r := newRig(t)
	r.tok.StoreCertificate(t, r.root.Cert, "root", nil)
	targets := []target{{name: "oci-layout"}, {name: "olareg", reg: testenv.StartOlareg(t)}}
	var scopes []string
	for _, tg := range targets {
		scopes = append(scopes, tg.scope(repo))
	}
	r.n.SetTrustPolicy(t, policy(scopes))
	for i, spec := range []string{"EC-256", "EC-384", "RSA-3072"} {
		label := strings.ToLower(strings.ReplaceAll(spec, "-", ""))
		keyID := r.addKey(t, spec, label, byte(i+1))
		for _, format := range []string{"jws", "cose"} {
			for _, mode := range []string{"raw", "envelope"} {
				for _, tg := range targets {
					t.Run(strings.Join([]string{spec, format, mode, tg.name}, "/"), func(t *testing.T) {
						signArgs, verifyArgs := tg.artifact(t, repo)
						args := []string{"sign", "--plugin", "keyward", "--id", keyID, "--signature-format", format}
						if mode == "envelope" {
							args = append(args, "--plugin-config", "signing_mode=envelope")
						}
						r.n.MustRun(t, append(args, signArgs...)...)
						out := r.n.MustRun(t, append([]string{"verify"}, verifyArgs...)...)
						if !strings.Contains(out, "Successfully verified") {
							t.Errorf("notation verify printed %q", out)
						}
						if tg.reg != nil {
							checkInspect(t, r.n, verifyArgs[len(verifyArgs)-1], algorithms[spec], "hsm "+label)
						}
					})
				}
			}
		}
	}
}

// checkInspect checks the signature notation stored: its algorithm and the
// leaf certificate from the token.
func checkInspect(t *testing.T, n *testenv.Notation, ref, algorithm, leafCN string) {
	t.Helper()
	out := n.MustRun(t, "inspect", "--insecure-registry", "-o", "json", ref)
	var inspect struct {
		Signatures []struct {
			SignatureAlgorithm string `json:"signatureAlgorithm"`
			Certificates       []struct {
				IssuedTo string `json:"issuedTo"`
			} `json:"certificates"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(out), &inspect); err != nil {
		t.Fatalf("notation inspect -o json: %v\n%s", err, out)
	}
	if len(inspect.Signatures) != 1 {
		t.Fatalf("notation inspect found %d signatures, want 1", len(inspect.Signatures))
	}
	sig := inspect.Signatures[0]
	if sig.SignatureAlgorithm != algorithm {
		t.Errorf("signature algorithm %q, want %q", sig.SignatureAlgorithm, algorithm)
	}
	if len(sig.Certificates) != 2 || !strings.Contains(sig.Certificates[0].IssuedTo, "CN="+leafCN) {
		t.Errorf("certificate chain %+v, want the token's leaf for %q and the root", sig.Certificates, leafCN)
	}
}

// TestStoredKey: notation key add --plugin keyward --id ... --plugin-config
// ca_certs=... stores the key; notation sign --key uses it, on a registry
// without the referrers API (tag fallback).
func TestStoredKey(t *testing.T) {
	r := newRig(t)
	keyID := r.addKey(t, "EC-256", "stored", 9)
	ca := testpki.WriteFile(t, t.TempDir(), "ca.pem", testpki.CertsPEM(r.root.Cert), 0o644)
	tg := target{name: "distribution", reg: testenv.StartDistribution(t)}
	r.n.SetTrustPolicy(t, policy([]string{tg.scope(repo)}))
	r.n.MustRun(t, "key", "add", "hsm-release", "--plugin", "keyward", "--id", keyID, "--plugin-config", "ca_certs="+ca)
	for _, format := range []string{"jws", "cose"} {
		signArgs, verifyArgs := tg.artifact(t, repo)
		r.n.MustRun(t, append([]string{"sign", "--key", "hsm-release", "--signature-format", format}, signArgs...)...)
		r.n.MustRun(t, append([]string{"verify"}, verifyArgs...)...)
	}
}

// TestSignErrorsReachNotation: a wrong PIN is ACCESS_DENIED, a key id that
// matches two keys, a missing module and a token leaf certificate of another
// key are VALIDATION_ERROR; notation reports each with keyward's message,
// and the PIN appears nowhere.
func TestSignErrorsReachNotation(t *testing.T) {
	r := newRig(t)
	r.tok.StoreCertificate(t, r.root.Cert, "root", nil)
	good := r.addKey(t, "EC-256", "good", 1)
	r.addKey(t, "EC-256", "twin", 2)
	r.addKey(t, "EC-256", "twin", 3)
	// "swapped": its certificate object certifies the key "unused".
	r.tok.GenerateKey(t, "EC-256", "swapped", []byte{4})
	otherLeaf := r.root.Leaf(t, "hsm unused", testpki.WithPublicKey(r.tok.GenerateKey(t, "EC-256", "unused", []byte{5})))
	r.tok.StoreCertificate(t, otherLeaf.Cert, "swapped", []byte{4})
	r.n.SetTrustPolicy(t, policy([]string{"local/layout"}))

	const wrongPIN = "wrong-pin-90210"
	wrongPINFile := testpki.WriteFile(t, t.TempDir(), "wrong", []byte(wrongPIN), 0o600)
	tests := []struct {
		name  string
		keyID string
		code  string
		msg   []string
	}{
		{"wrong PIN", strings.Replace(good, r.pin, wrongPINFile, 1), "ACCESS_DENIED", []string{"CKR_PIN_INCORRECT", wrongPINFile}},
		{"URI matching two keys", r.keyID("twin"), "VALIDATION_ERROR", []string{"selects 2 keys", "id=%02", "id=%03"}},
		{"missing module", strings.Replace(good, r.hsm.Module, "/nonexistent/libpkcs11.so", 1), "VALIDATION_ERROR", []string{"/nonexistent/libpkcs11.so", "does not exist"}},
		{"leaf of another key", r.keyID("swapped"), "VALIDATION_ERROR", []string{"certifies another key", "hsm unused"}},
		{"pin-value", "pkcs11:token=" + r.tok.Label + ";object=good?module-path=" + r.hsm.Module + "&pin-value=" + wrongPIN, "VALIDATION_ERROR", []string{"pin-value", "pin-source"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
			stdout, stderr, err := r.n.Run(t, "sign", "--verbose", "--plugin", "keyward", "--id", tc.keyID, "--oci-layout", layout+"@"+digest)
			if err == nil {
				t.Fatalf("notation sign succeeded:\n%s", stdout)
			}
			if !strings.Contains(stderr, "Error: failed to sign with the plugin keyward") {
				t.Errorf("stderr does not carry the plugin failure:\n%s", stderr)
			}
			// notation --verbose logs the protocol error code it received.
			if want := "plugin keyward: " + tc.code; !strings.Contains(stderr, want) {
				t.Errorf("stderr does not contain %q:\n%s", want, stderr)
			}
			for _, m := range tc.msg {
				if !strings.Contains(stderr, m) {
					t.Errorf("stderr does not contain %q:\n%s", m, stderr)
				}
			}
			// (With pin-value the user put the PIN in notation's own
			// arguments; keyward's message must still not repeat it, which
			// the unit tests check.)
			if tc.name != "pin-value" && strings.Contains(stdout+stderr, wrongPIN) || strings.Contains(stdout+stderr, r.hsm.PIN) {
				t.Errorf("a PIN appears in notation's output:\n%s\n%s", stdout, stderr)
			}
		})
	}
}

// TestConcurrentSigns runs several notation sign processes against one
// token at once: each logs in and signs in its own process.
func TestConcurrentSigns(t *testing.T) {
	r := newRig(t)
	r.tok.StoreCertificate(t, r.root.Cert, "root", nil)
	keyID := r.addKey(t, "EC-256", "shared", 1)
	r.n.SetTrustPolicy(t, policy([]string{"local/layout"}))
	const n = 6
	type art struct{ sign, verify []string }
	arts := make([]art, n)
	for i := range arts {
		arts[i].sign, arts[i].verify = target{}.artifact(t, repo)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]string, n)
	for i := range arts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, outs[i], errs[i] = r.n.Run(t, append([]string{"sign", "--plugin", "keyward", "--id", keyID}, arts[i].sign...)...)
		}(i)
	}
	wg.Wait()
	for i := range arts {
		if errs[i] != nil {
			t.Errorf("concurrent sign %d: %v\n%s", i, errs[i], outs[i])
			continue
		}
		r.n.MustRun(t, append([]string{"verify"}, arts[i].verify...)...)
	}
}

// keysListJSON is the part of `keyward keys list --output json` checked.
type keysListJSON struct {
	Module string `json:"module"`
	Tokens []struct {
		Label    string `json:"label"`
		LoggedIn bool   `json:"loggedIn"`
		Keys     []struct {
			URI         string `json:"uri"`
			Label       string `json:"label"`
			ID          string `json:"id"`
			KeySpec     string `json:"keySpec"`
			PrivateKey  string `json:"privateKey"`
			Certificate *struct {
				Subject string `json:"subject"`
			} `json:"certificate"`
		} `json:"keys"`
		Certificates []struct {
			Label string `json:"label"`
			CA    bool   `json:"ca"`
		} `json:"certificates"`
	} `json:"tokens"`
}

// TestKeysList checks keyward keys list against the keys created on the
// token, then signs with a key id taken from its output.
func TestKeysList(t *testing.T) {
	r := newRig(t)
	r.tok.StoreCertificate(t, r.root.Cert, "root", nil)
	r.addKey(t, "EC-256", "alpha", 0x0a)
	r.addKey(t, "EC-384", "beta", 0x0b)
	r.tok.GenerateKey(t, "EC-256", "no-cert", []byte{0x0c})
	keyward := testenv.KeywardBinary(t)
	run := func(env []string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.Command(keyward, args...)
		cmd.Env = append(append(os.Environ(), r.hsm.Env...), env...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("keyward %v: %v\n%s", args, err, stderr.String())
		}
		return stdout.String(), stderr.String()
	}

	out, _ := run(nil, "keys", "list", "--module", r.hsm.Module, "--token", r.tok.Label, "--output", "json")
	var inv keysListJSON
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("keys list --output json: %v\n%s", err, out)
	}
	if inv.Module != r.hsm.Module || len(inv.Tokens) != 1 || inv.Tokens[0].Label != r.tok.Label || inv.Tokens[0].LoggedIn {
		t.Fatalf("keys list: %s", out)
	}
	want := map[string]struct{ id, spec, cn string }{
		"alpha":   {"0a", "EC-256", "CN=hsm alpha"},
		"beta":    {"0b", "EC-384", "CN=hsm beta"},
		"no-cert": {"0c", "EC-256", ""},
	}
	keys := inv.Tokens[0].Keys
	if len(keys) != len(want) {
		t.Fatalf("keys list shows %d keys, want %d: %s", len(keys), len(want), out)
	}
	for _, k := range keys {
		w, ok := want[k.Label]
		if !ok || k.ID != w.id || k.KeySpec != w.spec || k.PrivateKey != "unknown" {
			t.Errorf("key %+v, want %+v", k, w)
		}
		switch {
		case w.cn == "" && k.Certificate != nil:
			t.Errorf("key %s shows certificate %q, it has none", k.Label, k.Certificate.Subject)
		case w.cn != "" && (k.Certificate == nil || !strings.Contains(k.Certificate.Subject, w.cn)):
			t.Errorf("key %s certificate %+v, want subject with %s", k.Label, k.Certificate, w.cn)
		}
		wantURI := fmt.Sprintf("pkcs11:token=%s;object=%s;id=%%%s?module-path=%s", url.PathEscape(r.tok.Label), k.Label, w.id, r.hsm.Module)
		if k.URI != wantURI {
			t.Errorf("key %s URI %s, want %s", k.Label, k.URI, wantURI)
		}
	}
	if c := inv.Tokens[0].Certificates; len(c) != 3 {
		t.Errorf("keys list shows %d certificates, want 3 (two leaves and the root)", len(c))
	}

	// With --login (PIN from the environment) the private keys are seen.
	out, _ = run([]string{"KEYWARD_PKCS11_PIN=" + r.hsm.PIN}, "keys", "list", "--module", r.hsm.Module, "--token", r.tok.Label, "--login", "-o", "json")
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	for _, k := range inv.Tokens[0].Keys {
		if k.PrivateKey != "present" {
			t.Errorf("with --login key %s private key %q, want present", k.Label, k.PrivateKey)
		}
	}
	if strings.Contains(out, r.hsm.PIN) {
		t.Error("keys list output holds the PIN")
	}

	// The text form prints each key id ready to paste; sign with one.
	text, _ := run(nil, "keys", "list", "--module", r.hsm.Module, "--token", r.tok.Label)
	var pasted string
	for _, line := range strings.Split(text, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "--id '"); ok && strings.Contains(s, "object=beta") {
			pasted = strings.TrimSuffix(s, "'")
		}
	}
	if pasted == "" {
		t.Fatalf("keys list text has no --id line for beta:\n%s", text)
	}
	r.n.SetTrustPolicy(t, policy([]string{"local/layout"}))
	signArgs, verifyArgs := target{}.artifact(t, repo)
	r.n.MustRun(t, append([]string{"sign", "--plugin", "keyward", "--id", pasted + "&pin-source=file:" + r.pin}, signArgs...)...)
	r.n.MustRun(t, append([]string{"verify"}, verifyArgs...)...)
}
