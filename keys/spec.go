package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
)

// Spec is one of the six key specs of the Notary Project signature
// specification ("Algorithm Selection"): RSA 2048/3072/4096 with RSASSA-PSS
// and EC P-256/P-384/P-521 with ECDSA. The key determines the hash.
type Spec struct {
	// Name is the protocol's keySpec value, e.g. "EC-256".
	Name string
	// Hash is the hash notation pairs with the key spec.
	Hash crypto.Hash
	// HashName is the protocol's hashAlgorithm value, e.g. "SHA-256".
	HashName string
	// Algorithm is the protocol's signingAlgorithm value, e.g. "ECDSA-SHA-256".
	Algorithm string
	// RSA is true for RSASSA-PSS keys, false for ECDSA keys.
	RSA bool
	// Bits is the RSA modulus size or the curve size.
	Bits int
}

// The key specs (specification signature-specification.md "Algorithm
// Selection"; notation-plugin-framework-go v1.0.0 plugin/algorithm.go).
var specs = []Spec{
	{Name: "RSA-2048", Hash: crypto.SHA256, HashName: "SHA-256", Algorithm: "RSASSA-PSS-SHA-256", RSA: true, Bits: 2048},
	{Name: "RSA-3072", Hash: crypto.SHA384, HashName: "SHA-384", Algorithm: "RSASSA-PSS-SHA-384", RSA: true, Bits: 3072},
	{Name: "RSA-4096", Hash: crypto.SHA512, HashName: "SHA-512", Algorithm: "RSASSA-PSS-SHA-512", RSA: true, Bits: 4096},
	{Name: "EC-256", Hash: crypto.SHA256, HashName: "SHA-256", Algorithm: "ECDSA-SHA-256", Bits: 256},
	{Name: "EC-384", Hash: crypto.SHA384, HashName: "SHA-384", Algorithm: "ECDSA-SHA-384", Bits: 384},
	{Name: "EC-521", Hash: crypto.SHA512, HashName: "SHA-512", Algorithm: "ECDSA-SHA-512", Bits: 521},
}

// SpecOf returns the key spec of a public key. Like notation-core-go's
// ExtractKeySpec it accepts exactly the six sizes the specification lists:
// RSA-1024 or RSA-8192 keys are refused, as notation refuses them.
func SpecOf(pub crypto.PublicKey) (Spec, error) {
	var rsaKey bool
	var bits int
	switch k := pub.(type) {
	case *rsa.PublicKey:
		rsaKey, bits = true, k.N.BitLen()
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			bits = k.Curve.Params().BitSize
		default:
			return Spec{}, Invalidf("EC curve %s is not supported: notation signs with P-256, P-384 or P-521", k.Curve.Params().Name)
		}
	default:
		return Spec{}, Invalidf("%T keys are not supported: notation signs with RSA (2048, 3072, 4096 bits) or EC (P-256, P-384, P-521) keys", pub)
	}
	for _, s := range specs {
		if s.RSA == rsaKey && s.Bits == bits {
			return s, nil
		}
	}
	return Spec{}, Invalidf("RSA key size %d bits is not supported: notation signs with RSA keys of exactly 2048, 3072 or 4096 bits", bits)
}

// SpecByName returns the key spec with the protocol name, e.g. "RSA-3072".
func SpecByName(name string) (Spec, error) {
	for _, s := range specs {
		if s.Name == name {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("unknown key spec %q", name)
}
