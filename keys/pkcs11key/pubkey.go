package pkcs11key

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
)

// Named-curve object identifiers (RFC 5480 §2.1.1.1) that notation signs
// with, and the ecPublicKey algorithm identifier.
var (
	oidECPublicKey = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	curveNames     = map[string]string{
		"1.2.840.10045.3.1.7":  "P-256",
		"1.3.132.0.34":         "P-384",
		"1.3.132.0.35":         "P-521",
		"1.3.132.0.10":         "secp256k1",
		"1.3.101.112":          "Ed25519",
		"1.3.101.113":          "Ed448",
		"1.3.36.3.3.2.8.1.1.7": "brainpoolP256r1",
	}
)

// rsaPublicKey builds an RSA public key from CKA_MODULUS and
// CKA_PUBLIC_EXPONENT (big-endian integers).
func rsaPublicKey(modulus, exponent []byte) (*rsa.PublicKey, error) {
	n := new(big.Int).SetBytes(modulus)
	e := new(big.Int).SetBytes(exponent)
	if n.Sign() <= 0 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("RSA public key object has an invalid modulus or exponent")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// ecPublicKey builds an EC public key from CKA_EC_PARAMS (a DER named-curve
// OID) and CKA_EC_POINT (a DER OCTET STRING holding the uncompressed point;
// some tokens return the bare point). It goes through x509's SPKI parser,
// which checks that the point is on the curve.
func ecPublicKey(params, point []byte) (crypto.PublicKey, error) {
	var curve asn1.ObjectIdentifier
	if rest, err := asn1.Unmarshal(params, &curve); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("EC key object's CKA_EC_PARAMS is not a named curve (explicit curve parameters are not supported)")
	}
	name, known := curveNames[curve.String()]
	switch name {
	case "P-256", "P-384", "P-521":
	default:
		if !known {
			name = "with OID " + curve.String()
		}
		return nil, fmt.Errorf("EC curve %s is not supported: notation signs with P-256, P-384 or P-521", name)
	}
	var raw []byte
	if rest, err := asn1.Unmarshal(point, &raw); err != nil || len(rest) != 0 || len(raw) == 0 || raw[0] != 4 {
		raw = point // a bare point, as some tokens return it
	}
	spki, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidECPublicKey, Parameters: asn1.RawValue{FullBytes: params}},
		PublicKey: asn1.BitString{Bytes: raw, BitLength: 8 * len(raw)},
	})
	if err != nil {
		return nil, fmt.Errorf("encode EC public key: %w", err)
	}
	pub, err := x509.ParsePKIXPublicKey(spki)
	if err != nil {
		return nil, fmt.Errorf("EC key object's CKA_EC_POINT is not a valid %s point: %v", name, err)
	}
	return pub, nil
}
