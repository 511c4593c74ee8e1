package testpki

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
)

// ScryptKeyPEM returns an ENCRYPTED PRIVATE KEY PEM block (RFC 5958
// EncryptedPrivateKeyInfo, PBES2 of RFC 8018 with the scrypt KDF of RFC 7914
// section 7.1 and AES-256-CBC) declaring the scrypt parameters n, r and p.
// The encrypted data is two blocks of zeros: the block is for testing how
// a reader treats the parameters (hostile ones above all), and decrypts to
// nothing with any passphrase.
func ScryptKeyPEM(n, r, p int) []byte {
	type scryptParams struct {
		Salt                     []byte
		CostParameter            int
		BlockSize                int
		ParallelizationParameter int
	}
	return pbes2KeyPEM(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11},
		scryptParams{Salt: make([]byte, 8), CostParameter: n, BlockSize: r, ParallelizationParameter: p})
}

// PBKDF2KeyPEM returns an ENCRYPTED PRIVATE KEY PEM block like
// [ScryptKeyPEM], with PBKDF2 (RFC 8018 appendix A.2, HMAC-SHA-256) of the
// given iteration count: a key that costs that much work to try.
func PBKDF2KeyPEM(iterations int) []byte {
	type pbkdf2Params struct {
		Salt           []byte
		IterationCount int
		PRF            pkix.AlgorithmIdentifier
	}
	return pbes2KeyPEM(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}, pbkdf2Params{
		Salt: make([]byte, 8), IterationCount: iterations,
		PRF: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, Parameters: asn1.NullRawValue},
	})
}

// pbes2KeyPEM encodes a PBES2 EncryptedPrivateKeyInfo with the given key
// derivation and AES-256-CBC over two blocks of zeros.
func pbes2KeyPEM(kdfOID asn1.ObjectIdentifier, kdfParams any) []byte {
	type pbes2Params struct {
		KeyDerivationFunc pkix.AlgorithmIdentifier
		EncryptionScheme  pkix.AlgorithmIdentifier
	}
	type encryptedPrivateKeyInfo struct {
		Algorithm     pkix.AlgorithmIdentifier
		EncryptedData []byte
	}
	must := func(b []byte, err error) asn1.RawValue {
		if err != nil {
			panic(fmt.Sprintf("testpki: encode the PBES2 key: %v", err)) // only fixed-shape values are encoded
		}
		return asn1.RawValue{FullBytes: b}
	}
	kdf := pkix.AlgorithmIdentifier{Algorithm: kdfOID, Parameters: must(asn1.Marshal(kdfParams))}
	enc := pkix.AlgorithmIdentifier{
		Algorithm:  asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42},
		Parameters: must(asn1.Marshal(make([]byte, 16))),
	}
	info := encryptedPrivateKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{
			Algorithm:  asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13},
			Parameters: must(asn1.Marshal(pbes2Params{KeyDerivationFunc: kdf, EncryptionScheme: enc})),
		},
		EncryptedData: make([]byte, 32),
	}
	der := must(asn1.Marshal(info)).FullBytes
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der})
}
