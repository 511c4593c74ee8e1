//go:build cgo

// Package pkcs11test puts keys and certificates on PKCS#11 tokens for tests
// (SoftHSM2 in keyward's): key pairs generated on the token, so that the
// private key never exists outside it, and certificate objects for them.
//
// Each call loads the module, opens a read-write session, logs in as the
// user, does its work and finalizes the module again, so that the code under
// test starts from a module nobody holds. It is meant for tests and
// benchmark programs, not for production tokens.
package pkcs11test

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// TB is the part of testing.TB the package uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Token is an initialized token with a user PIN.
type Token struct {
	Module string // path of the PKCS#11 library
	Label  string // token label
	PIN    string // user PIN
}

// Named-curve OIDs (RFC 5480).
var curveOIDs = map[string]asn1.ObjectIdentifier{
	"EC-256": {1, 2, 840, 10045, 3, 1, 7},
	"EC-384": {1, 3, 132, 0, 34},
	"EC-521": {1, 3, 132, 0, 35},
}

var rsaBits = map[string]int{"RSA-2048": 2048, "RSA-3072": 3072, "RSA-4096": 4096}

// Do runs f in a logged-in read-write session of the token.
func (tok Token) Do(t TB, f func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle)) {
	t.Helper()
	if err := tok.do(f); err != nil {
		t.Fatalf("pkcs11test: token %q: %v", tok.Label, err)
	}
}

func (tok Token) do(f func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle)) error {
	ctx := pkcs11.New(tok.Module)
	if ctx == nil {
		return fmt.Errorf("cannot load module %q", tok.Module)
	}
	defer ctx.Destroy()
	owner := true
	if err := ctx.Initialize(); err != nil {
		if e, ok := err.(pkcs11.Error); !ok || e != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			return fmt.Errorf("C_Initialize: %w", err)
		}
		owner = false
	}
	if owner {
		defer ctx.Finalize()
	}
	slot, err := tok.slot(ctx)
	if err != nil {
		return err
	}
	s, err := ctx.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("C_OpenSession: %w", err)
	}
	defer ctx.CloseSession(s)
	if err := ctx.Login(s, pkcs11.CKU_USER, tok.PIN); err != nil {
		if e, ok := err.(pkcs11.Error); !ok || e != pkcs11.CKR_USER_ALREADY_LOGGED_IN {
			return fmt.Errorf("C_Login: %w", err)
		}
	}
	f(ctx, s)
	return nil
}

func (tok Token) slot(ctx *pkcs11.Ctx) (uint, error) {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("C_GetSlotList: %w", err)
	}
	for _, s := range slots {
		info, err := ctx.GetTokenInfo(s)
		if err == nil && info.Label == tok.Label {
			return s, nil
		}
	}
	return 0, fmt.Errorf("no token labelled %q", tok.Label)
}

// GenerateKey generates a key pair of spec ("EC-256", "EC-384", "EC-521",
// "RSA-2048", "RSA-3072", "RSA-4096") on the token, with CKA_LABEL label
// and CKA_ID id on both halves; the private key is sensitive and not
// extractable. It returns the public key.
func (tok Token) GenerateKey(t TB, spec, label string, id []byte) crypto.PublicKey {
	t.Helper()
	var pub crypto.PublicKey
	tok.Do(t, func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) {
		var err error
		pub, err = generate(ctx, s, spec, label, id)
		if err != nil {
			t.Fatalf("pkcs11test: generate %s key %q on token %q: %v", spec, label, tok.Label, err)
		}
	})
	return pub
}

func generate(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, spec, label string, id []byte) (crypto.PublicKey, error) {
	common := func(class uint) []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		}
	}
	pubT := append(common(pkcs11.CKO_PUBLIC_KEY), pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false))
	privT := append(common(pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false))
	var mech uint
	if oid, ok := curveOIDs[spec]; ok {
		params, _ := asn1.Marshal(oid)
		mech = pkcs11.CKM_EC_KEY_PAIR_GEN
		pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC), pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params))
		privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC))
	} else if bits, ok := rsaBits[spec]; ok {
		mech = pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN
		pubT = append(pubT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}))
		privT = append(privT, pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA))
	} else {
		return nil, fmt.Errorf("unknown key spec %q", spec)
	}
	pubH, _, err := ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pubT, privT)
	if err != nil {
		return nil, fmt.Errorf("C_GenerateKeyPair: %w", err)
	}
	return PublicKey(ctx, s, pubH)
}

// PublicKey reads the public key of a public key object.
func PublicKey(ctx *pkcs11.Ctx, s pkcs11.SessionHandle, h pkcs11.ObjectHandle) (crypto.PublicKey, error) {
	a, err := ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, nil)})
	if err != nil {
		return nil, err
	}
	if len(a[0].Value) > 0 && a[0].Value[0] == byte(pkcs11.CKK_RSA) {
		a, err = ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
		if err != nil {
			return nil, err
		}
		der, err := asn1.Marshal(struct{ N, E *big.Int }{new(big.Int).SetBytes(a[0].Value), new(big.Int).SetBytes(a[1].Value)})
		if err != nil {
			return nil, err
		}
		return x509.ParsePKCS1PublicKey(der)
	}
	a, err = ctx.GetAttributeValue(s, h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil), pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, err
	}
	var point []byte
	if _, err := asn1.Unmarshal(a[1].Value, &point); err != nil {
		return nil, fmt.Errorf("CKA_EC_POINT: %w", err)
	}
	spki, err := asn1.Marshal(struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}, Parameters: asn1.RawValue{FullBytes: a[0].Value}},
		PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)},
	})
	if err != nil {
		return nil, err
	}
	return x509.ParsePKIXPublicKey(spki)
}

// StoreCertificate stores cert as a public X.509 certificate object with
// CKA_LABEL label and CKA_ID id (nil: no CKA_ID), with CKA_SUBJECT, CKA_ISSUER
// and CKA_SERIAL_NUMBER set as pkcs11-tool sets them.
func (tok Token) StoreCertificate(t TB, cert *x509.Certificate, label string, id []byte) {
	t.Helper()
	serial, _ := asn1.Marshal(cert.SerialNumber)
	attrs := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
		pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE, cert.Raw),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, cert.RawSubject),
		pkcs11.NewAttribute(pkcs11.CKA_ISSUER, cert.RawIssuer),
		pkcs11.NewAttribute(pkcs11.CKA_SERIAL_NUMBER, serial),
	}
	if id != nil {
		attrs = append(attrs, pkcs11.NewAttribute(pkcs11.CKA_ID, id))
	}
	tok.CreateObject(t, attrs...)
}

// CreateObject creates an object with the given attributes.
func (tok Token) CreateObject(t TB, attrs ...*pkcs11.Attribute) {
	t.Helper()
	tok.Do(t, func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) {
		if _, err := ctx.CreateObject(s, attrs); err != nil {
			t.Fatalf("pkcs11test: C_CreateObject on token %q: %v", tok.Label, err)
		}
	})
}

// DestroyObjects destroys the objects of class with CKA_ID id.
func (tok Token) DestroyObjects(t TB, class uint, id []byte) {
	t.Helper()
	tok.Do(t, func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) {
		tmpl := []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class), pkcs11.NewAttribute(pkcs11.CKA_ID, id)}
		if err := ctx.FindObjectsInit(s, tmpl); err != nil {
			t.Fatalf("pkcs11test: C_FindObjectsInit: %v", err)
		}
		hs, _, err := ctx.FindObjects(s, 100)
		_ = ctx.FindObjectsFinal(s)
		if err != nil {
			t.Fatalf("pkcs11test: C_FindObjects: %v", err)
		}
		for _, h := range hs {
			if err := ctx.DestroyObject(s, h); err != nil {
				t.Fatalf("pkcs11test: C_DestroyObject: %v", err)
			}
		}
	})
}
