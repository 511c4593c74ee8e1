package scan

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
)

// CosignKey is a public key that cosign signatures may have been made
// with (cosign sign --key): a key-based signature names no key, so the
// scan tries these.
type CosignKey struct {
	pub  crypto.PublicKey
	hint string
}

// ParseCosignKey parses a PEM public key ("PUBLIC KEY": ECDSA, RSA or
// Ed25519), as cosign.pub holds it.
func ParseCosignKey(data []byte) (*CosignKey, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM PUBLIC KEY")
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	switch pub.(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("public key of type %T is not supported", pub)
	}
	return &CosignKey{pub: pub, hint: keyHint(b.Bytes)}, nil
}

// verify checks a cosign signature (base64) over payload: ECDSA or RSA
// PKCS #1 v1.5 over its SHA-256, or Ed25519 over the payload (sigstore
// signature package defaults).
func (k *CosignKey) verify(payload []byte, sigB64 string) bool {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || len(sig) == 0 {
		return false
	}
	sum := sha256.Sum256(payload)
	switch pub := k.pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, sum[:], sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
	case ed25519.PublicKey:
		return ed25519.Verify(pub, payload, sig)
	}
	return false
}

// identity is the key as a verified signer.
func (k *CosignKey) identity() *Identity {
	id := hintIdentity(k.hint)
	id.Verified = true
	return id
}
