// Command minimalplugin is the cheapest notation RAW plugin we could write,
// the floor keyward's plugin is measured against (make bench): it decodes
// the request, signs with the key file named by the key id and answers, with
// no validation at all. It is a benchmark reference, never a plugin to use.
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"strings"
)

func main() { os.Exit(run()) }

func run() int {
	var req struct {
		KeyID        string            `json:"keyId"`
		Payload      []byte            `json:"payload"`
		PluginConfig map[string]string `json:"pluginConfig"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		return fail(err)
	}
	var resp any
	switch os.Args[1] {
	case "get-plugin-metadata":
		resp = map[string]any{"name": "minimal", "description": "benchmark floor", "version": "1.0.0",
			"url": "https://example.invalid", "supportedContractVersions": []string{"1.0"},
			"capabilities": []string{"SIGNATURE_GENERATOR.RAW"}}
	case "describe-key":
		resp = map[string]string{"keyId": req.KeyID, "keySpec": "EC-256"}
	case "generate-signature":
		keyPEM, err := os.ReadFile(strings.TrimPrefix(req.KeyID, "file:"))
		if err != nil {
			return fail(err)
		}
		block, _ := pem.Decode(keyPEM)
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return fail(err)
		}
		digest := sha256.Sum256(req.Payload)
		der, err := key.(crypto.Signer).Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return fail(err)
		}
		chainPEM, err := os.ReadFile(req.PluginConfig["cert_chain"])
		if err != nil {
			return fail(err)
		}
		var chain [][]byte
		for b, rest := pem.Decode(chainPEM); b != nil; b, rest = pem.Decode(rest) {
			chain = append(chain, b.Bytes)
		}
		resp = map[string]any{"keyId": req.KeyID, "signature": rawECDSA(der),
			"signingAlgorithm": "ECDSA-SHA-256", "certificateChain": chain}
	default:
		return fail(fmt.Errorf("unsupported command %s", os.Args[1]))
	}
	if err := json.NewEncoder(os.Stdout).Encode(resp); err != nil {
		return fail(err)
	}
	return 0
}

// rawECDSA turns a P-256 ASN.1 signature into the r||s notation needs.
func rawECDSA(der []byte) []byte {
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, `{"errorCode":"ERROR","errorMessage":%q}`, err.Error())
	return 1
}
