//go:build cgo

package pkcs11key

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sync"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/keyward/keyward/keys"
)

// keyPair is the key a URI selected: its identity on the token and its
// public key. The private key object is looked up only when signing, after
// login.
type keyPair struct {
	tok   token
	id    []byte
	label string
	pub   crypto.PublicKey
	// from says which object gave the public key, for messages.
	from string
}

// describe names the key for messages.
func (k keyPair) describe() string {
	return fmt.Sprintf("key (label %q, id %s) on %s", k.label, hexID(k.id), k.tok)
}

// signer is the crypto.Signer of a token key. It holds the session opened
// by Open, or opens the token on the first Sign when the chain came from
// cert_chain, and logs in on the first Sign.
type signer struct {
	b        Backend
	uri      *URI
	module   moduleChoice
	pin      pinSource
	fileLeaf *x509.Certificate // cert_chain leaf, when the chain is a file
	pub      crypto.PublicKey  // set by Open, never changed

	mu     sync.Mutex
	s      *session // nil until the token is opened
	key    keyPair
	closed bool
}

var _ crypto.Signer = (*signer)(nil)

// Public returns the key's public key: the token's, or the cert_chain
// leaf's (Sign checks that the token's key is the same).
func (k *signer) Public() crypto.PublicKey { return k.pub }

// Sign signs a digest on the token: CKM_ECDSA for EC keys, returning ASN.1
// DER as crypto.Signer implementations do; CKM_RSA_PKCS_PSS for RSA keys,
// which requires opts to be *rsa.PSSOptions (notation signs RSA with
// RSASSA-PSS only) with a salt as long as the hash or a fixed length.
func (k *signer) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, errors.New("the PKCS#11 key was closed")
	}
	if k.s == nil {
		if err := k.openToken(); err != nil {
			return nil, err
		}
	}
	spec, err := keys.SpecOf(k.key.pub)
	if err != nil {
		return nil, err
	}
	h := opts.HashFunc()
	if h == 0 || !h.Available() || len(digest) != h.Size() {
		return nil, fmt.Errorf("sign with %s: the input must be a SHA-2 digest of the hash in opts", k.key.describe())
	}
	mech, err := mechanism(spec, h, opts)
	if err != nil {
		return nil, err
	}
	priv, alwaysAuth, err := k.privateKey()
	// SoftHSM2 may answer a login made while another process rewrites the
	// token file with CKR_GENERAL_ERROR or CKR_USER_PIN_NOT_INITIALIZED,
	// before it checks the PIN, and keeps that view until the module is
	// initialized again: reopen the token and retry (see openToken).
	for attempt := 1; err != nil && transientLogin(err) && attempt < openAttempts; attempt++ {
		k.closeToken()
		time.Sleep(time.Duration(attempt*attempt) * openRetryDelay)
		if err := k.reopen(); err != nil {
			return nil, err
		}
		priv, alwaysAuth, err = k.privateKey()
	}
	if err != nil {
		return nil, err
	}
	ctx := k.s.m.ctx
	if err := ctx.SignInit(k.s.h, mech, priv); err != nil {
		return nil, ckrError(fmt.Sprintf("start signing with %s (C_SignInit)", k.key.describe()), err, k.key.tok.info.Label)
	}
	if alwaysAuth {
		// CKA_ALWAYS_AUTHENTICATE (PIV signature keys): the PIN again,
		// for this one operation.
		var pin string
		if k.pin.configured() || !k.key.tok.pinPad() {
			if pin, err = k.pin.read(k.b.getenv); err != nil {
				return nil, err
			}
		}
		if err := ctx.Login(k.s.h, pkcs11.CKU_CONTEXT_SPECIFIC, pin); err != nil {
			return nil, loginError(k.key.tok, k.pin, err)
		}
	}
	sig, err := ctx.Sign(k.s.h, digest)
	if err != nil {
		return nil, ckrError(fmt.Sprintf("sign with %s (C_Sign)", k.key.describe()), err, k.key.tok.info.Label)
	}
	if spec.RSA {
		return sig, nil
	}
	return rawToDER(sig, (spec.Bits+7)/8)
}

// mechanism returns the signing mechanism of spec for hash h and opts.
func mechanism(spec keys.Spec, h crypto.Hash, opts crypto.SignerOpts) ([]*pkcs11.Mechanism, error) {
	if !spec.RSA {
		// The token signs the digest computed by the caller: SoftHSM and
		// many HSMs have no CKM_ECDSA_SHA384 and friends.
		return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}, nil
	}
	pss, ok := opts.(*rsa.PSSOptions)
	if !ok {
		return nil, keys.Invalidf("%s signs with RSASSA-PSS only (the Notary Project signature specification uses no PKCS#1 v1.5 signatures)", spec.Name)
	}
	var hashMech, mgf uint
	switch h {
	case crypto.SHA256:
		hashMech, mgf = pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256
	case crypto.SHA384:
		hashMech, mgf = pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384
	case crypto.SHA512:
		hashMech, mgf = pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512
	default:
		return nil, fmt.Errorf("RSASSA-PSS with %v is not supported: use SHA-256, SHA-384 or SHA-512", h)
	}
	salt := pss.SaltLength
	switch {
	case salt == rsa.PSSSaltLengthEqualsHash:
		salt = h.Size()
	case salt <= 0:
		// rsa.PSSSaltLengthAuto means the largest salt for crypto/rsa;
		// go-cose verifies with a salt as long as the hash only.
		return nil, fmt.Errorf("RSASSA-PSS salt length %d is not supported: use rsa.PSSSaltLengthEqualsHash", salt)
	}
	params := pkcs11.NewPSSParams(hashMech, mgf, uint(salt))
	return []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, params)}, nil
}

// rawToDER converts the PKCS#11 ECDSA signature r||s (PKCS#11 v2.40 §2.3.1)
// to the ASN.1 DER form crypto.Signer returns.
func rawToDER(sig []byte, size int) ([]byte, error) {
	if len(sig) != 2*size {
		return nil, fmt.Errorf("the token returned a %d-byte ECDSA signature, want %d bytes (r||s)", len(sig), 2*size)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{
		R: new(big.Int).SetBytes(sig[:size]),
		S: new(big.Int).SetBytes(sig[size:]),
	})
}

// privateKey finds the private key object of the pair, logging in first
// when the token requires it (or when the key stays hidden without login).
// It reports whether the key needs a context-specific login per operation.
func (k *signer) privateKey() (pkcs11.ObjectHandle, bool, error) {
	if k.key.tok.loginRequired() {
		if err := k.s.login(k.pin, k.b.getenv); err != nil {
			return 0, false, err
		}
	}
	tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY)}
	if len(k.key.id) > 0 {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, k.key.id))
	} else {
		tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.key.label))
	}
	hs, err := k.s.find(tmpl, maxObjectsListed)
	if err != nil {
		return 0, false, err
	}
	if len(hs) == 0 && !k.s.loggedIn && k.pin.configured() {
		if err := k.s.login(k.pin, k.b.getenv); err != nil {
			return 0, false, err
		}
		if hs, err = k.s.find(tmpl, maxObjectsListed); err != nil {
			return 0, false, err
		}
	}
	switch {
	case len(hs) == 0:
		return 0, false, invalidf("%s has no private key: its %s is on the token but no private key object with the same %s is visible to this user; import or generate the private key with that id",
			k.key.describe(), k.key.from, map[bool]string{true: "id", false: "label"}[len(k.key.id) > 0])
	case len(hs) > 1:
		return 0, false, invalidf("%s matches %d private key objects with the same id: give each key pair its own CKA_ID", k.key.describe(), len(hs))
	}
	a, err := k.s.attrs(hs[0], pkcs11.CKA_KEY_TYPE, pkcs11.CKA_SIGN, pkcs11.CKA_ALWAYS_AUTHENTICATE)
	if err != nil {
		return 0, false, err
	}
	kt, _ := ulong(a[pkcs11.CKA_KEY_TYPE])
	_, isRSA := k.key.pub.(*rsa.PublicKey)
	if (kt == pkcs11.CKK_RSA) != isRSA || (kt != pkcs11.CKK_RSA && kt != pkcs11.CKK_EC) {
		return 0, false, invalidf("%s: the private key object with this id is of another key type than its public key or certificate: give each key pair its own CKA_ID", k.key.describe())
	}
	if v := a[pkcs11.CKA_SIGN]; len(v) == 1 && v[0] == 0 {
		return 0, false, invalidf("%s may not sign (CKA_SIGN is false): use a key generated for signing", k.key.describe())
	}
	always := len(a[pkcs11.CKA_ALWAYS_AUTHENTICATE]) == 1 && a[pkcs11.CKA_ALWAYS_AUTHENTICATE][0] != 0
	return hs[0], always, nil
}

// transientLogin reports whether a failed login may be SoftHSM2 reading its
// token file mid-write (see Sign).
func transientLogin(err error) bool {
	return isCode(err, pkcs11.CKR_GENERAL_ERROR) || isCode(err, pkcs11.CKR_USER_PIN_NOT_INITIALIZED)
}

// closeToken ends the session and releases the module.
func (k *signer) closeToken() {
	if k.s != nil {
		k.s.close()
		k.s.m.close()
		k.s = nil
	}
}

// reopen opens the token again and checks that the key is the one opened
// before.
func (k *signer) reopen() error {
	if err := k.openToken(); err != nil {
		return err
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if p, ok := k.pub.(equaler); !ok || !p.Equal(k.key.pub) {
		k.closeToken()
		return fmt.Errorf("the key id names another key after reopening %s: the token changed while signing", k.key.tok)
	}
	return nil
}

// close ends the session and unloads the module.
func (k *signer) close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil
	}
	k.closed = true
	k.closeToken()
	return nil
}
