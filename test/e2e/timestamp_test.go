package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
)

// TestEnvelopeTimestamp checks RFC 3161 timestamps in envelope mode, where
// notation leaves the countersignature to the plugin: keyward asks the TSA
// of plugin config timestamp_url (a TSA on 127.0.0.1) and checks its token
// against timestamp_root_cert, for JWS and COSE. notation verify then
// verifies the timestamp, and still accepts the signature once the leaf has
// expired; keyward verify agrees. Misconfiguration and a failing TSA fail
// signing with a message that names the config key.
func TestEnvelopeTimestamp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testpki.Root(t, "e2e envelope timestamp root")
	key := testpki.Key(t, "EC-256", "e2e envelope timestamp")
	// The leaf expires a few seconds from now (x509 keeps whole seconds).
	leaf := ca.Leaf(t, "envelope timestamp signer", testpki.WithKey(key),
		testpki.WithValidity(time.Now().Add(-time.Hour), time.Now().Add(8*time.Second)))
	keyID := "file:" + testpki.WriteFile(t, dir, "leaf.key", testpki.KeyPEM(t, key), 0o600)
	chain := testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, ca.Cert), 0o644)
	// The same key with a leaf that stays valid, for the failures below.
	lasting := ca.Leaf(t, "envelope timestamp lasting signer", testpki.WithKey(key))
	lastingChain := testpki.WriteFile(t, dir, "lasting.pem", testpki.CertsPEM(lasting.Cert, ca.Cert), 0o644)
	tsa := testpki.StartTSA(t)
	other := testpki.StartTSA(t)
	tsaRoot := testpki.WriteFile(t, dir, "tsa-root.pem", testpki.CertsPEM(tsa.Root().Cert), 0o644)
	otherRoot := testpki.WriteFile(t, dir, "other-root.pem", testpki.CertsPEM(other.Root().Cert), 0o644)

	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	n.AddTrustStore(t, "ca", "e2e", ca.Cert)
	n.AddTrustStore(t, "tsa", "e2e", tsa.Root().Cert)
	n.AddTrustStore(t, "tsa", "other", other.Root().Cert)
	policyFor := func(tsaStore, verifyTimestamp string) []byte {
		b, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{map[string]any{
			"name": "ts", "registryScopes": []string{"*"},
			"signatureVerification": map[string]string{"level": "strict", "verifyTimestamp": verifyTimestamp},
			"trustStores":           []string{"ca:e2e", "tsa:" + tsaStore}, "trustedIdentities": []string{"*"}}}})
		return b
	}
	config := func(kv ...string) []string {
		args := []string{"--plugin-config", "cert_chain=" + chain, "--plugin-config", "signing_mode=envelope"}
		for _, c := range kv {
			args = append(args, "--plugin-config", c)
		}
		return args
	}
	sign := func(format string, kv ...string) (ref string, stderr string, err error) {
		layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
		ref = layout + "@" + digest
		args := append([]string{"sign", "--plugin", "keyward", "--id", keyID, "--signature-format", format, "--oci-layout"}, config(kv...)...)
		_, stderr, err = n.Run(t, append(args, ref)...)
		return ref, stderr, err
	}
	verify := func(ref string) (string, bool) {
		stdout, stderr, err := n.Run(t, "verify", "-v", "--oci-layout", "--scope", "local/layout", ref)
		return stdout + stderr, err == nil
	}
	stamp := []string{"timestamp_url=" + tsa.URL(), "timestamp_root_cert=" + tsaRoot}

	refs := map[string]string{}
	for _, format := range []string{"jws", "cose"} {
		ref, stderr, err := sign(format, stamp...)
		if err != nil {
			t.Fatalf("%s: notation sign: %v\n%s", format, err, stderr)
		}
		refs[format] = ref
	}
	if got := tsa.Requests(); got != 2 {
		t.Errorf("the TSA got %d requests for two signatures", got)
	}
	unstamped, stderr, err := sign("jws")
	if err != nil {
		t.Fatalf("notation sign without a timestamp: %v\n%s", err, stderr)
	}

	// Timestamps are verified against the tsa store: the right one passes,
	// a store without the TSA's root fails at authenticTimestamp.
	n.SetTrustPolicy(t, policyFor("e2e", "always"))
	kw := testenv.KeywardBinary(t)
	for format, ref := range refs {
		if out, ok := verify(ref); !ok {
			t.Errorf("%s: notation verify failed:\n%s", format, out)
		}
		out, err := runKeyward(t, kw, n, "verify", "--oci-layout", "--scope", "local/layout", "-o", "json", ref)
		var r struct {
			Signatures []struct {
				Signer struct {
					Timestamp *struct{ Authority string } `json:"timestamp"`
				} `json:"signer"`
			} `json:"signatures"`
		}
		if err != nil || json.Unmarshal([]byte(out), &r) != nil || len(r.Signatures) != 1 || r.Signatures[0].Signer.Timestamp == nil ||
			!strings.Contains(r.Signatures[0].Signer.Timestamp.Authority, tsa.Leaf().Cert.Subject.CommonName) {
			t.Errorf("%s: keyward verify does not report a timestamp by the TSA (%v):\n%s", format, err, out)
		}
	}
	n.SetTrustPolicy(t, policyFor("other", "always"))
	if out, ok := verify(refs["jws"]); ok || !strings.Contains(out, "failed to verify the timestamp countersignature") {
		t.Errorf("notation verify with another TSA's root in the store: ok=%v\n%s", ok, out)
	}

	// Once the leaf has expired, only the timestamped signatures verify,
	// with notation and with keyward.
	if wait := time.Until(leaf.Cert.NotAfter) + 1100*time.Millisecond; wait > 0 {
		time.Sleep(wait)
	}
	n.SetTrustPolicy(t, policyFor("e2e", "afterCertExpiry"))
	for name, tc := range map[string]struct {
		ref  string
		pass bool
	}{"jws": {refs["jws"], true}, "cose": {refs["cose"], true}, "unstamped": {unstamped, false}} {
		out, ok := verify(tc.ref)
		if ok != tc.pass {
			t.Errorf("%s after the leaf expired: notation verify passed=%v, want %v\n%s", name, ok, tc.pass, out)
		}
		kout, kerr := runKeyward(t, kw, n, "verify", "--oci-layout", "--scope", "local/layout", "-v", tc.ref)
		if (kerr == nil) != tc.pass {
			t.Errorf("%s after the leaf expired: keyward verify passed=%v, want %v\n%s", name, kerr == nil, tc.pass, kout)
		}
		if tc.pass && !strings.Contains(kout, "authenticTimestamp  enforce passed") {
			t.Errorf("%s: keyward does not report the verified timestamp:\n%s", name, kout)
		}
	}

	// Misconfiguration and TSA failures fail signing, naming the key.
	for _, tc := range []struct {
		name   string
		format string
		kv     []string
		raw    bool
		want   string
	}{
		{"url without root", "jws", []string{"timestamp_url=" + tsa.URL()}, false, "timestamp_url and timestamp_root_cert go together"},
		{"raw mode", "jws", stamp, true, "in raw mode notation timestamps the signature, so pass --timestamp-url"},
		{"not a URL", "jws", []string{"timestamp_url=ftp://x", "timestamp_root_cert=" + tsaRoot}, false, `timestamp_url="ftp://x" is not an http or https URL`},
		{"root of another TSA", "cose", []string{"timestamp_url=" + tsa.URL(), "timestamp_root_cert=" + otherRoot}, false, "timestamping at timestamp_url=" + tsa.URL()},
		{"root file missing", "jws", []string{"timestamp_url=" + tsa.URL(), "timestamp_root_cert=" + filepath.Join(dir, "nope.pem")}, false, "timestamp_root_cert file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv := tc.kv
			args := []string{"sign", "--plugin", "keyward", "--id", keyID, "--signature-format", tc.format, "--oci-layout",
				"--plugin-config", "cert_chain=" + lastingChain}
			if !tc.raw {
				args = append(args, "--plugin-config", "signing_mode=envelope")
			}
			for _, c := range kv {
				args = append(args, "--plugin-config", c)
			}
			layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
			_, stderr, err := n.Run(t, append(args, layout+"@"+digest)...)
			if err == nil || !strings.Contains(stderr, tc.want) {
				t.Errorf("notation sign: err %v, want a failure with %q:\n%s", err, tc.want, stderr)
			}
			t.Logf("notation sign: %s", strings.TrimSpace(stderr))
		})
	}
	t.Run("TSA down", func(t *testing.T) {
		down := testpki.StartTSA(t)
		down.SetDown(true)
		root := testpki.WriteFile(t, dir, "down-root.pem", testpki.CertsPEM(down.Root().Cert), 0o644)
		layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
		_, stderr, err := n.Run(t, "sign", "--plugin", "keyward", "--id", keyID, "--oci-layout",
			"--plugin-config", "cert_chain="+lastingChain, "--plugin-config", "signing_mode=envelope",
			"--plugin-config", "timestamp_url="+down.URL(), "--plugin-config", "timestamp_root_cert="+root, layout+"@"+digest)
		if err == nil || !strings.Contains(stderr, "timestamping at timestamp_url="+down.URL()) || !strings.Contains(stderr, "500") {
			t.Errorf("notation sign: err %v, want a timestamping failure naming the TSA and its status:\n%s", err, stderr)
		}
		t.Logf("notation sign: %s", strings.TrimSpace(stderr))
	})
}

// runKeyward runs the keyward binary in notation's environment n.Env, so
// that it reads n's trust policy and trust store.
func runKeyward(t *testing.T, bin string, n *testenv.Notation, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = n.Env
	out, err := cmd.CombinedOutput()
	return string(out), err
}
