package plugin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyward/keyward/keys"
	"github.com/keyward/keyward/keys/filekey"
	"github.com/keyward/keyward/plugin"
)

// writeFileKey writes a new P-256 key (PKCS#8 PEM, mode 0600, as the file
// backend requires) and a self-signed code-signing certificate for it into
// dir, and returns their paths.
func writeFileKey(dir string) (keyPath, chainPath string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", err
	}
	keyPath = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	// A chain of one self-signed certificate is the smallest chain notation
	// accepts: code signing, digitalSignature, not a CA.
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"example"}, CommonName: "example signer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
	}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return "", "", err
	}
	chainPath = filepath.Join(dir, "chain.pem")
	if err := os.WriteFile(chainPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}), 0o644); err != nil {
		return "", "", err
	}
	return keyPath, chainPath, nil
}

// Run answers one protocol command the way the notation-keyward binary
// does, without the process: the JSON request goes in as a reader, the JSON
// response comes back as bytes (or a *plugin.Error with a protocol error
// code, which the binary writes to standard error). The opener decides
// which key ids the plugin serves; here only file: keys, as
// notation sign --plugin keyward --id file:<key> --plugin-config
// cert_chain=<chain> uses them.
func ExamplePlugin_Run() {
	dir, err := os.MkdirTemp("", "keyward-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	keyPath, chainPath, err := writeFileKey(dir)
	if err != nil {
		fmt.Println(err)
		return
	}

	p := plugin.New(keys.NewOpener(filekey.Backend{Getenv: os.Getenv}))
	ctx := context.Background()
	call := func(command string, request any, response any) bool {
		in, err := json.Marshal(request)
		if err != nil {
			fmt.Println(err)
			return false
		}
		out, perr := p.Run(ctx, command, strings.NewReader(string(in)))
		if perr != nil {
			fmt.Printf("%s: %s\n", command, perr.JSON())
			return false
		}
		if err := json.Unmarshal(out, response); err != nil {
			fmt.Println(err)
			return false
		}
		return true
	}
	config := map[string]string{keys.ConfigCertChain: chainPath}

	// notation asks for the metadata before every sign.
	var meta struct {
		Name                      string   `json:"name"`
		SupportedContractVersions []string `json:"supportedContractVersions"`
		Capabilities              []string `json:"capabilities"`
	}
	if !call("get-plugin-metadata", map[string]any{"pluginConfig": config}, &meta) {
		return
	}
	fmt.Println("name:", meta.Name)
	fmt.Println("contract versions:", meta.SupportedContractVersions)
	fmt.Println("capabilities:", meta.Capabilities)

	// Then it asks what kind of key the key id names.
	keyID := "file:" + keyPath
	var desc struct {
		KeyID   string `json:"keyId"`
		KeySpec string `json:"keySpec"`
	}
	if !call("describe-key", map[string]any{"contractVersion": "1.0", "keyId": keyID, "pluginConfig": config}, &desc) {
		return
	}
	fmt.Println("key id echoed:", desc.KeyID == keyID)
	fmt.Println("keySpec:", desc.KeySpec)

	// With RAW signing, notation builds the envelope and sends the bytes to
	// sign; the plugin returns the signature and the certificate chain.
	payload := []byte("the bytes notation signs")
	var sig struct {
		Signature        []byte   `json:"signature"`
		SigningAlgorithm string   `json:"signingAlgorithm"`
		CertificateChain [][]byte `json:"certificateChain"`
	}
	if !call("generate-signature", map[string]any{
		"contractVersion": "1.0", "keyId": keyID, "pluginConfig": config,
		"keySpec": desc.KeySpec, "hashAlgorithm": "SHA-256", "payload": payload,
	}, &sig) {
		return
	}
	fmt.Println("signingAlgorithm:", sig.SigningAlgorithm)
	fmt.Println("certificates in the chain:", len(sig.CertificateChain))
	// An ECDSA signature is r || s, each as long as the curve's order.
	leaf, err := x509.ParseCertificate(sig.CertificateChain[0])
	if err != nil || len(sig.Signature) != 64 {
		fmt.Println("unexpected signature:", err, len(sig.Signature))
		return
	}
	digest := sha256.Sum256(payload)
	r, s := new(big.Int).SetBytes(sig.Signature[:32]), new(big.Int).SetBytes(sig.Signature[32:])
	fmt.Println("signature verifies:", ecdsa.Verify(leaf.PublicKey.(*ecdsa.PublicKey), digest[:], r, s))

	// A failure is a protocol error: notation shows its code and message.
	_, perr := p.Run(ctx, "describe-key", strings.NewReader(`{"contractVersion":"1.0","keyId":"file:relative/key.pem"}`))
	fmt.Println("error code:", perr.Code)
	// Output:
	// name: keyward
	// contract versions: [1.0]
	// capabilities: [SIGNATURE_GENERATOR.RAW SIGNATURE_VERIFIER.TRUSTED_IDENTITY SIGNATURE_VERIFIER.REVOCATION_CHECK]
	// key id echoed: true
	// keySpec: EC-256
	// signingAlgorithm: ECDSA-SHA-256
	// certificates in the chain: 1
	// signature verifies: true
	// error code: VALIDATION_ERROR
}
