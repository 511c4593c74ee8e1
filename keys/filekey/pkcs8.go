package filekey

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"

	"github.com/keyward/keyward/keys"
)

// Object identifiers of RFC 8018 (PKCS #5 v2.1), RFC 7914 (scrypt) and
// NIST's AES arcs.
var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}

	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3   = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

// Work bounds: a key file is local input, but a hostile one must not make the
// plugin spin for minutes or allocate gigabytes.
//
// scrypt (RFC 7914 section 2) allocates 128·r·N bytes for V plus 128·r·p for
// B, and computes about N·r·p BlockMix rounds. `openssl pkcs8 -topk8 -scrypt`
// writes N=16384 r=8 p=1 (16 MiB, 2^17 rounds), and OpenSSL 3 refuses to
// write or read any key whose scrypt needs more than 32 MiB (SCRYPT_MAX_MEM,
// openssl providers/implementations/kdfs/scrypt.c); Go's x/crypto/scrypt
// documentation recommends N=32768 r=8 p=1 (32 MiB). keyward allows 8 times
// OpenSSL's ceiling in memory and 32 times its default in rounds (about 1 s
// on a 2020s core), and refuses the rest before allocating anything.
const (
	maxPBKDF2Iterations = 10_000_000
	// maxScryptMemory bounds 128·r·(N+p), the bytes scrypt allocates.
	maxScryptMemory = 256 << 20
	// maxScryptWork bounds N·r·p, the BlockMix rounds scrypt computes.
	maxScryptWork = 1 << 22
	// maxScryptFactor bounds each of N, r and p alone, so that the
	// products above cannot overflow.
	maxScryptFactor = 1 << 30
)

// RFC 5958 EncryptedPrivateKeyInfo.
type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

// RFC 8018 appendix A.4.
type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

// RFC 8018 appendix A.2.
type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

// RFC 7914 section 7.1.
type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                int `asn1:"optional"`
}

// decryptPKCS8 decrypts an RFC 5958 EncryptedPrivateKeyInfo protected with
// PBES2 (RFC 8018 section 6.2) and returns the PKCS #8 PrivateKeyInfo DER.
// A wrong passphrase is reported as a keys.KindAccessDenied error.
func decryptPKCS8(der, passphrase []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) != 0 {
		return nil, keys.Invalidf("the ENCRYPTED PRIVATE KEY block is not a valid PKCS #8 EncryptedPrivateKeyInfo")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, keys.Invalidf("the key is encrypted with %s, not PBES2: re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) != 0 {
		return nil, keys.Invalidf("the key's PBES2 parameters are malformed")
	}
	block, keyLen, iv, err := encryptionScheme(params.EncryptionScheme)
	if err != nil {
		return nil, err
	}
	key, err := deriveKey(params.KeyDerivationFunc, passphrase, keyLen)
	if err != nil {
		return nil, err
	}
	c, err := block(key)
	if err != nil {
		return nil, fmt.Errorf("set up cipher: %w", err)
	}
	bs := c.BlockSize()
	if len(iv) != bs {
		return nil, keys.Invalidf("the key's encryption IV is %d bytes, want %d", len(iv), bs)
	}
	data := info.EncryptedData
	if len(data) == 0 || len(data)%bs != 0 {
		return nil, keys.Invalidf("the key's encrypted data is not a whole number of cipher blocks")
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(c, iv).CryptBlocks(plain, data)
	// RFC 8018 section 6.1.1 step 4 padding; a wrong passphrase almost
	// always breaks it, and otherwise breaks the PKCS #8 parse that follows.
	n := int(plain[len(plain)-1])
	if n == 0 || n > bs || !bytes.Equal(plain[len(plain)-n:], bytes.Repeat([]byte{byte(n)}, n)) {
		return nil, keys.Deniedf("the key could not be decrypted: the passphrase is wrong")
	}
	return plain[:len(plain)-n], nil
}

type blockFunc func(key []byte) (cipher.Block, error)

func encryptionScheme(alg pkix.AlgorithmIdentifier) (blockFunc, int, []byte, error) {
	var iv []byte
	if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &iv); err != nil {
		return nil, 0, nil, keys.Invalidf("the key's encryption IV is malformed")
	}
	switch {
	case alg.Algorithm.Equal(oidAES128CBC):
		return aes.NewCipher, 16, iv, nil
	case alg.Algorithm.Equal(oidAES192CBC):
		return aes.NewCipher, 24, iv, nil
	case alg.Algorithm.Equal(oidAES256CBC):
		return aes.NewCipher, 32, iv, nil
	case alg.Algorithm.Equal(oidDESEDE3):
		return des.NewTripleDESCipher, 24, iv, nil
	}
	return nil, 0, nil, keys.Invalidf("the key is encrypted with cipher %s, which is not supported: re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", alg.Algorithm)
}

func deriveKey(kdf pkix.AlgorithmIdentifier, passphrase []byte, keyLen int) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, keys.Invalidf("the key's PBKDF2 parameters are malformed")
		}
		if p.IterationCount < 1 || p.IterationCount > maxPBKDF2Iterations {
			return nil, keys.Invalidf("the key's PBKDF2 iteration count %d is outside 1..%d", p.IterationCount, maxPBKDF2Iterations)
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, keys.Invalidf("the key's PBKDF2 key length %d does not match its cipher (%d)", p.KeyLength, keyLen)
		}
		h, err := prf(p.PRF)
		if err != nil {
			return nil, err
		}
		key, err := pbkdf2.Key(h, string(passphrase), p.Salt, p.IterationCount, keyLen)
		if err != nil {
			return nil, keys.Invalidf("derive the key: %v", err)
		}
		return key, nil
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return nil, keys.Invalidf("the key's scrypt parameters are malformed")
		}
		if err := checkScryptParams(p.CostParameter, p.BlockSize, p.ParallelizationParameter); err != nil {
			return nil, err
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, keys.Invalidf("the key's scrypt key length %d does not match its cipher (%d)", p.KeyLength, keyLen)
		}
		key, err := scrypt.Key(passphrase, p.Salt, p.CostParameter, p.BlockSize, p.ParallelizationParameter, keyLen)
		if err != nil {
			return nil, keys.Invalidf("the key's scrypt parameters are invalid: %v", err)
		}
		return key, nil
	}
	return nil, keys.Invalidf("the key uses key derivation %s, which is not supported: re-encrypt it with `openssl pkcs8 -topk8 -v2 aes-256-cbc`", kdf.Algorithm)
}

// checkScryptParams refuses scrypt parameters whose memory or work exceeds
// maxScryptMemory or maxScryptWork, before scrypt.Key allocates anything.
func checkScryptParams(n, r, p int) error {
	if n < 2 || n > maxScryptFactor || n&(n-1) != 0 || r < 1 || r > maxScryptFactor || p < 1 || p > maxScryptFactor {
		// RFC 7914 section 2: N is a power of two greater than 1; r and p
		// are positive.
		return keys.Invalidf("the key's scrypt parameters N=%d r=%d p=%d are invalid: N must be a power of two from 2 to 2^30, r and p from 1 to 2^30; re-encrypt the key with `openssl pkcs8 -topk8 -scrypt`", n, r, p)
	}
	un, ur, up := uint64(n), uint64(r), uint64(p)
	if mem := 128 * ur * (un + up); mem > maxScryptMemory {
		return keys.Invalidf("the key's scrypt parameters N=%d r=%d p=%d need %d MiB of memory (128·r·(N+p) bytes), more than the %d MiB keyward allows: `openssl pkcs8 -topk8 -scrypt` writes N=16384 r=8 p=1 (16 MiB); re-encrypt the key with it",
			n, r, p, (mem+(1<<20)-1)>>20, maxScryptMemory>>20)
	}
	if work := un * ur * up; work > maxScryptWork {
		return keys.Invalidf("the key's scrypt parameters N=%d r=%d p=%d need N·r·p=%d rounds of work, more than the %d keyward allows: `openssl pkcs8 -topk8 -scrypt` writes N=16384 r=8 p=1 (131072 rounds); re-encrypt the key with it",
			n, r, p, work, maxScryptWork)
	}
	return nil
}

// prf returns the PBKDF2 pseudo-random function; absent means HMAC-SHA1
// (RFC 8018 appendix A.2, "DEFAULT algid-hmacWithSHA1").
func prf(alg pkix.AlgorithmIdentifier) (func() hash.Hash, error) {
	switch {
	case len(alg.Algorithm) == 0, alg.Algorithm.Equal(oidHMACSHA1):
		return sha1.New, nil
	case alg.Algorithm.Equal(oidHMACSHA224):
		return sha256.New224, nil
	case alg.Algorithm.Equal(oidHMACSHA256):
		return sha256.New, nil
	case alg.Algorithm.Equal(oidHMACSHA384):
		return sha512.New384, nil
	case alg.Algorithm.Equal(oidHMACSHA512):
		return sha512.New, nil
	}
	return nil, keys.Invalidf("the key uses PBKDF2 with %s, which is not supported", alg.Algorithm)
}
