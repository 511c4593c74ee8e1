package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose"
	_ "github.com/notaryproject/notation-core-go/signature/jws"

	"github.com/keyward/keyward/internal/testpki"
)

var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// pluginBinary builds the real plugin binary once per test run.
func pluginBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyward-plugin-test-")
		if err != nil {
			buildErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "notation-keyward")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("build notation-keyward: %v", buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// exchange runs the binary as notation does: argv [path, command], the
// request on stdin.
func exchange(t *testing.T, command string, stdin []byte) (status int, stdout, stderr []byte) {
	t.Helper()
	cmd := exec.Command(pluginBinary(t), command)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		status = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return status, out.Bytes(), errw.Bytes()
}

// TestProtocol drives the real binary over stdin and stdout through the
// sequence notation runs for a signature: metadata, describe-key,
// generate-signature; and, in envelope mode, generate-envelope.
func TestProtocol(t *testing.T) {
	dir := t.TempDir()
	root := testpki.Root(t, "protocol root")
	key := testpki.Key(t, "EC-384", "protocol")
	leaf := root.Leaf(t, "protocol leaf", testpki.WithKey(key))
	keyID := "file:" + testpki.WriteFile(t, dir, "key.pem", testpki.KeyPEM(t, key), 0o600)
	chain := testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644)
	cfg := map[string]string{"cert_chain": chain}

	request := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ok := func(command string, req []byte, resp any) {
		t.Helper()
		status, out, errOut := exchange(t, command, req)
		if status != 0 || len(errOut) != 0 {
			t.Fatalf("%s: status %d stderr %s", command, status, errOut)
		}
		if err := json.Unmarshal(out, resp); err != nil {
			t.Fatalf("%s: stdout %q is not the JSON response: %v", command, out, err)
		}
	}

	var meta struct{ Name, Version string }
	ok("get-plugin-metadata", request(map[string]any{"pluginConfig": cfg}), &meta)
	if meta.Name != "keyward" {
		t.Errorf("name = %q", meta.Name)
	}
	var desc struct{ KeyID, KeySpec string }
	ok("describe-key", request(map[string]any{"contractVersion": "1.0", "keyId": keyID, "pluginConfig": cfg}), &desc)
	if desc.KeySpec != "EC-384" || desc.KeyID != keyID {
		t.Errorf("describe-key = %+v", desc)
	}
	var sig struct {
		Signature        []byte
		SigningAlgorithm string
		CertificateChain [][]byte
	}
	ok("generate-signature", request(map[string]any{"contractVersion": "1.0", "keyId": keyID, "keySpec": "EC-384",
		"hashAlgorithm": "SHA-384", "payload": []byte("payload"), "pluginConfig": cfg}), &sig)
	if len(sig.Signature) != 96 || sig.SigningAlgorithm != "ECDSA-SHA-384" || len(sig.CertificateChain) != 2 {
		t.Errorf("generate-signature: %d-byte signature, %s, %d certificates", len(sig.Signature), sig.SigningAlgorithm, len(sig.CertificateChain))
	}
	var env struct {
		SignatureEnvelope     []byte
		SignatureEnvelopeType string
	}
	payload := []byte(`{"targetArtifact":{"digest":"sha256:73c803930ea3ba1e54bc25c2bdc53edd0284c62ed651fe7b00369da519a3c333","mediaType":"application/vnd.oci.image.manifest.v1+json","size":1}}`)
	ok("generate-envelope", request(map[string]any{"contractVersion": "1.0", "keyId": keyID,
		"payloadType": "application/vnd.cncf.notary.payload.v1+json", "signatureEnvelopeType": "application/cose",
		"payload": payload, "pluginConfig": map[string]string{"cert_chain": chain, "signing_mode": "envelope"}}), &env)
	parsed, err := signature.ParseEnvelope(env.SignatureEnvelopeType, env.SignatureEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsed.Verify(); err != nil {
		t.Errorf("the envelope from the binary does not verify: %v", err)
	}
}

// TestProtocolFailures checks the error contract on the real binary: exit
// status 1, stdout empty, stderr exactly one JSON error with the code.
func TestProtocolFailures(t *testing.T) {
	huge := []byte(`{"contractVersion":"1.0","payload":"` + strings.Repeat("A", 9<<20) + `"}`)
	for _, tc := range []struct {
		name, command string
		stdin         []byte
		code          string
	}{
		{"empty stdin", "describe-key", nil, "VALIDATION_ERROR"},
		{"newline", "generate-signature", []byte("\n"), "VALIDATION_ERROR"},
		{"invalid JSON", "generate-envelope", []byte("invalidjson"), "VALIDATION_ERROR"},
		{"non-UTF-8", "describe-key", []byte("{\"keyId\":\"\xff\"}"), "VALIDATION_ERROR"},
		{"oversized", "generate-signature", huge, "VALIDATION_ERROR"},
		{"contract 2.0", "describe-key", []byte(`{"contractVersion":"2.0","keyId":"k"}`), "UNSUPPORTED_CONTRACT_VERSION"},
		{"missing key", "describe-key", []byte(`{"contractVersion":"1.0","keyId":"file:/nonexistent.pem","pluginConfig":{"cert_chain":"/nonexistent.crt"}}`), "VALIDATION_ERROR"},
		{"unknown command", "sign", []byte(`{}`), "VALIDATION_ERROR"},
		{"verify-signature missing fields", "verify-signature", []byte(`{"contractVersion":"1.0"}`), "VALIDATION_ERROR"},
		{"verify-signature bad JSON", "verify-signature", []byte(`{"contractVersion":"1.0","signature":`), "VALIDATION_ERROR"},
		{"verify-signature oversized", "verify-signature", huge, "VALIDATION_ERROR"},
		{"verify-signature contract 2.0", "verify-signature", []byte(`{"contractVersion":"2.0"}`), "UNSUPPORTED_CONTRACT_VERSION"},
		{"verify-signature no chain", "verify-signature", []byte(`{"contractVersion":"1.0","signature":{"criticalAttributes":{"contentType":"application/vnd.cncf.notary.payload.v1+json","signingScheme":"notary.x509"},"certificateChain":[]},"trustPolicy":{"trustedIdentities":["*"],"signatureVerification":["SIGNATURE_VERIFIER.TRUSTED_IDENTITY"]}}`), "VALIDATION_ERROR"},
		{"verify-signature unknown critical attribute", "verify-signature", []byte(`{"contractVersion":"1.0","signature":{"criticalAttributes":{"contentType":"application/vnd.cncf.notary.payload.v1+json","signingScheme":"notary.x509","extendedAttributes":{"com.example.x":"1"}},"unprocessedAttributes":["com.example.x"],"certificateChain":["MA=="]},"trustPolicy":{"trustedIdentities":["*"],"signatureVerification":["SIGNATURE_VERIFIER.TRUSTED_IDENTITY"]}}`), "VALIDATION_ERROR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out, errOut := exchange(t, tc.command, tc.stdin)
			if status != 1 {
				t.Errorf("exit status %d, want 1", status)
			}
			if len(out) != 0 {
				t.Errorf("stdout = %q, want nothing", out)
			}
			var e struct {
				Code    string `json:"errorCode"`
				Message string `json:"errorMessage"`
			}
			dec := json.NewDecoder(bytes.NewReader(errOut))
			if err := dec.Decode(&e); err != nil || dec.More() {
				t.Fatalf("stderr %q is not exactly one JSON error: %v", errOut, err)
			}
			if e.Code != tc.code || e.Message == "" {
				t.Errorf("error = %+v, want code %s", e, tc.code)
			}
		})
	}
}

func TestProtocolPayloadIsBase64(t *testing.T) {
	// The wire encodes []byte fields as standard padded base64: a URL-safe
	// alphabet is a validation error, not a silently different payload.
	req := `{"contractVersion":"1.0","keyId":"file:/k","keySpec":"EC-256","hashAlgorithm":"SHA-256","payload":"` +
		base64.URLEncoding.EncodeToString([]byte{0xfb, 0xff}) + `"}`
	status, out, errOut := exchange(t, "generate-signature", []byte(req))
	if status != 1 || len(out) != 0 || !bytes.Contains(errOut, []byte("base64")) {
		t.Errorf("status %d stdout %q stderr %s", status, out, errOut)
	}
}
