package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// SignMessage hashes message with the hash of the key's spec and signs the
// digest, returning the signature in the form the Notary Project envelopes
// carry (specification signature-specification.md "Algorithm Selection";
// notation-plugin-framework-go v1.0.0 plugin/algorithm.go):
//   - ECDSA: the raw fixed-width r||s (IEEE P1363), each half ceil(bits/8)
//     bytes. JWS (RFC 7518 §3.4) and COSE (RFC 9053 §2.1) both use it, and
//     notation rejects ASN.1 DER signatures.
//   - RSA: RSASSA-PSS with MGF1 over the same hash and a salt as long as the
//     hash (go-cose verifies with exactly that salt length).
//
// The signature is verified with the public key before it is returned, so a
// faulty token or a wrong key never yields a signature notation would refuse.
func (k *Key) SignMessage(message []byte) ([]byte, error) {
	spec, err := k.Spec()
	if err != nil {
		return nil, err
	}
	h := spec.Hash.New()
	h.Write(message)
	digest := h.Sum(nil)

	var opts crypto.SignerOpts = spec.Hash
	if spec.RSA {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.Hash}
	}
	sig, err := k.Signer.Sign(rand.Reader, digest, opts)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	if !spec.RSA {
		if sig, err = ecdsaRawSignature(sig, (spec.Bits+7)/8); err != nil {
			return nil, err
		}
	}
	if err := verifyDigest(k.Signer.Public(), spec, digest, sig); err != nil {
		return nil, fmt.Errorf("the signature the key produced does not verify with its public key: %w", err)
	}
	return sig, nil
}

// ecdsaRawSignature converts an ASN.1 DER ECDSA signature, as crypto.Signer
// returns it, to r||s of 2*size bytes. A signature already in that form is
// returned unchanged.
func ecdsaRawSignature(der []byte, size int) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &rs)
	if err != nil || len(rest) != 0 {
		if len(der) == 2*size {
			return der, nil
		}
		return nil, errors.New("the ECDSA signature is neither ASN.1 DER nor raw r||s")
	}
	if rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 8*size || rs.S.BitLen() > 8*size {
		return nil, errors.New("the ECDSA signature has out-of-range r or s")
	}
	out := make([]byte, 2*size)
	rs.R.FillBytes(out[:size])
	rs.S.FillBytes(out[size:])
	return out, nil
}

func verifyDigest(pub crypto.PublicKey, spec Spec, digest, sig []byte) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPSS(k, spec.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: spec.Hash})
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		r := new(big.Int).SetBytes(sig[:n])
		s := new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("ECDSA verification failed")
		}
		return nil
	}
	return fmt.Errorf("%T keys are not supported", pub)
}
