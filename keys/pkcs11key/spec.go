package pkcs11key

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"fmt"

	"github.com/keyward/keyward/keys"
)

// specName returns the notation key spec of pub ("EC-256"), or an error
// saying why notation cannot sign with it.
func specName(pub crypto.PublicKey) (string, error) {
	s, err := keys.SpecOf(pub)
	if err != nil {
		return "", err
	}
	return s.Name, nil
}

// keyDescription names a key's type and size for listings, including the
// types notation does not sign with ("RSA-1024").
func keyDescription(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	case nil:
		return "unknown"
	}
	return fmt.Sprintf("%T", pub)
}
