//go:build cgo

package pkcs11key_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/keys"
	"github.com/keyward/keyward/keys/pkcs11key"
	"github.com/keyward/keyward/keys/pkcs11key/pkcs11test"
)

// fixture is a token holding one key of each spec with its leaf
// certificate, and the intermediate and root certificates: the layout a
// release token has.
type fixture struct {
	tok    pkcs11test.Token
	pin    string // PIN file
	root   *testpki.Cert
	inter  *testpki.Cert
	keys   map[string]crypto.PublicKey // label -> public key
	leaves map[string]*x509.Certificate
}

var specs = []struct {
	label, spec string
	id          byte
}{
	{"ec256", "EC-256", 1},
	{"ec384", "EC-384", 2},
	{"ec521", "EC-521", 3},
	{"rsa2048", "RSA-2048", 4},
	{"rsa3072", "RSA-3072", 5},
}

var (
	fixOnce sync.Once
	fix     *fixture
)

func sharedFixture(t *testing.T) *fixture {
	t.Helper()
	requireSoftHSM(t)
	fixOnce.Do(func() {
		f := &fixture{keys: map[string]crypto.PublicKey{}, leaves: map[string]*x509.Certificate{}}
		f.tok = newToken(t, "unit")
		f.root = testpki.Root(t, "pkcs11 unit root")
		f.inter = f.root.Intermediate(t, "pkcs11 unit intermediate")
		for _, s := range specs {
			pub := f.tok.GenerateKey(t, s.spec, s.label, []byte{s.id})
			leaf := f.inter.Leaf(t, "pkcs11 "+s.label, testpki.WithPublicKey(pub))
			f.tok.StoreCertificate(t, leaf.Cert, s.label, []byte{s.id})
			f.keys[s.label], f.leaves[s.label] = pub, leaf.Cert
		}
		f.tok.StoreCertificate(t, f.inter.Cert, "intermediate", nil)
		f.tok.StoreCertificate(t, f.root.Cert, "root", nil)
		dir, err := os.MkdirTemp("", "keyward-pin-")
		if err != nil {
			t.Fatal(err)
		}
		f.pin = testpki.WriteFile(t, dir, "pin", []byte(f.tok.PIN+"\n"), 0o600)
		fix = f
	})
	if fix == nil {
		t.Fatal("the shared token fixture failed in an earlier test")
	}
	return fix
}

// uri builds a key id for the fixture's token.
func (f *fixture) uri(path string, query ...string) string {
	q := append([]string{"module-path=" + hsm.module}, query...)
	return "pkcs11:token=" + url.PathEscape(f.tok.Label) + path + "?" + strings.Join(q, "&")
}

func open(t *testing.T, keyID string, cfg keys.Config, environ map[string]string) (*keys.Key, error) {
	t.Helper()
	be := pkcs11key.Backend{Getenv: func(k string) string { return environ[k] }}
	k, err := keys.NewOpener(be).Open(context.Background(), keyID, cfg)
	if err == nil {
		t.Cleanup(func() { k.Release() })
	}
	return k, err
}

func mustOpen(t *testing.T, keyID string, cfg keys.Config, environ map[string]string) *keys.Key {
	t.Helper()
	k, err := open(t, keyID, cfg, environ)
	if err != nil {
		t.Fatalf("open %s: %v", keyID, err)
	}
	return k
}

// verify checks a signature in the envelope form (r||s, PSS salt = hash).
func verify(t *testing.T, pub crypto.PublicKey, spec keys.Spec, msg, sig []byte) {
	t.Helper()
	h := spec.Hash.New()
	h.Write(msg)
	digest := h.Sum(nil)
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if err := rsa.VerifyPSS(k, spec.Hash, digest, sig, &rsa.PSSOptions{SaltLength: spec.Hash.Size()}); err != nil {
			t.Errorf("%s: PSS signature with salt length %d does not verify: %v", spec.Name, spec.Hash.Size(), err)
		}
	case *ecdsa.PublicKey:
		n := (spec.Bits + 7) / 8
		if len(sig) != 2*n {
			t.Fatalf("%s: signature is %d bytes, want r||s of %d", spec.Name, len(sig), 2*n)
		}
		if !ecdsa.Verify(k, digest, new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])) {
			t.Errorf("%s: ECDSA signature does not verify", spec.Name)
		}
	default:
		t.Fatalf("unexpected key %T", pub)
	}
}

func wantErr(t *testing.T, err error, kind keys.ErrorKind, substrings ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substrings)
	}
	if !isKind(err, kind) {
		t.Errorf("error kind is not %v: %v", kind, err)
	}
	for _, s := range substrings {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error does not contain %q:\n%v", s, err)
		}
	}
}

// TestSignEachSpec signs with every key spec on the token and checks the
// signature, the spec and the chain assembled from the token.
func TestSignEachSpec(t *testing.T) {
	f := sharedFixture(t)
	for _, s := range specs {
		t.Run(s.spec, func(t *testing.T) {
			k := mustOpen(t, f.uri(";object="+s.label, "pin-source=file:"+f.pin), nil, nil)
			spec, err := k.Spec()
			if err != nil || spec.Name != s.spec {
				t.Fatalf("spec %v, %v; want %s", spec.Name, err, s.spec)
			}
			want := []*x509.Certificate{f.leaves[s.label], f.inter.Cert, f.root.Cert}
			if len(k.Chain) != 3 || !k.Chain[0].Equal(want[0]) || !k.Chain[1].Equal(want[1]) || !k.Chain[2].Equal(want[2]) {
				t.Fatalf("chain %v, want leaf, intermediate, root", subjects(k.Chain))
			}
			if !strings.Contains(k.ChainSource, f.tok.Label) {
				t.Errorf("chain source %q does not name the token", k.ChainSource)
			}
			msg := []byte("eyJhbGciOiJFUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319")
			sig, err := k.SignMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, f.keys[s.label], spec, msg, sig)
			// A second signature in the same session (logged in once).
			sig2, err := k.SignMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			verify(t, f.keys[s.label], spec, msg, sig2)
		})
	}
}

func subjects(chain []*x509.Certificate) []string {
	var out []string
	for _, c := range chain {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// TestSelectByID selects keys by CKA_ID alone, by id and label, and with
// type=private and the token's serial.
func TestSelectByID(t *testing.T) {
	f := sharedFixture(t)
	env := map[string]string{pkcs11key.EnvPIN: f.tok.PIN}
	for _, path := range []string{";id=%02", ";id=%02;object=ec384;type=private", ";object=ec384"} {
		k := mustOpen(t, f.uri(path), nil, env)
		if spec, _ := k.Spec(); spec.Name != "EC-384" {
			t.Errorf("%s: spec %s, want EC-384", path, spec.Name)
		}
	}
	// A module given by plugin config and by environment.
	k := mustOpen(t, "pkcs11:token="+f.tok.Label+";object=ec256", keys.Config{pkcs11key.ConfigModule: hsm.module}, env)
	if _, err := k.SignMessage([]byte("x")); err != nil {
		t.Error(err)
	}
	env[pkcs11key.EnvModule] = hsm.module
	k = mustOpen(t, "pkcs11:token="+f.tok.Label+";object=ec256", nil, env)
	if _, err := k.SignMessage([]byte("x")); err != nil {
		t.Error(err)
	}
}

// TestOpenDoesNotLogIn: opening a key (describe-key) works with a wrong
// PIN, because it does not log in; signing then fails with ACCESS_DENIED,
// and no message repeats the PIN.
func TestOpenDoesNotLogIn(t *testing.T) {
	f := sharedFixture(t)
	const wrong = "wrong-PIN-31337"
	k, err := open(t, f.uri(";object=ec256"), nil, map[string]string{pkcs11key.EnvPIN: wrong})
	if err != nil {
		t.Fatalf("open with a wrong PIN: %v (describe-key must not log in)", err)
	}
	_, err = k.SignMessage([]byte("payload"))
	wantErr(t, err, keys.KindAccessDenied, "CKR_PIN_INCORRECT", "environment variable KEYWARD_PKCS11_PIN", f.tok.Label)
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error repeats the PIN: %v", err)
	}
	// Same from a PIN file.
	p := testpki.WriteFile(t, t.TempDir(), "pin", []byte(wrong), 0o600)
	k = mustOpen(t, f.uri(";object=ec256", "pin-source=file:"+p), nil, nil)
	_, err = k.SignMessage([]byte("payload"))
	wantErr(t, err, keys.KindAccessDenied, "CKR_PIN_INCORRECT", p)
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error repeats the PIN: %v", err)
	}
}

func TestNoPIN(t *testing.T) {
	f := sharedFixture(t)
	k := mustOpen(t, f.uri(";object=ec256"), nil, nil)
	_, err := k.SignMessage([]byte("payload"))
	wantErr(t, err, keys.KindInvalid, "needs the user PIN", "pin-source=file:", "KEYWARD_PKCS11_PIN")
}

// TestURIMatchingSeveralKeys: a URI that selects more than one key is an
// error listing them, each with a URI that selects it alone.
func TestURIMatchingSeveralKeys(t *testing.T) {
	f := sharedFixture(t)
	_, err := open(t, f.uri(""), nil, nil)
	wantErr(t, err, keys.KindInvalid, fmt.Sprintf("selects %d keys", len(specs)))
	for _, s := range specs {
		if !strings.Contains(err.Error(), fmt.Sprintf(";object=%s;id=%%%02x?module-path=", s.label, s.id)) {
			t.Errorf("error does not list %s with its URI:\n%v", s.label, err)
		}
	}
	// The CA certificates on the token are not keys.
	if strings.Contains(err.Error(), "intermediate") {
		t.Errorf("error lists a CA certificate as a key:\n%v", err)
	}

	// Two key pairs with one label.
	tok := newToken(t, "dup")
	tok.GenerateKey(t, "EC-256", "same", []byte{1})
	tok.GenerateKey(t, "EC-256", "same", []byte{2})
	_, err = open(t, "pkcs11:token="+tok.Label+";object=same?module-path="+hsm.module, nil, nil)
	wantErr(t, err, keys.KindInvalid, "selects 2 keys", "id=%01", "id=%02")
}

func TestNoMatchingKey(t *testing.T) {
	f := sharedFixture(t)
	_, err := open(t, f.uri(";object=nope"), nil, nil)
	wantErr(t, err, keys.KindInvalid, "no key on token", `object="nope"`, ";object=ec256;id=%01")
	// The common mistake: pkcs11-tool's hex id written into the URI.
	_, err = open(t, f.uri(";id=01"), nil, nil)
	wantErr(t, err, keys.KindInvalid, "write id=%01")
}

func TestNoMatchingToken(t *testing.T) {
	f := sharedFixture(t)
	_, err := open(t, "pkcs11:token=absent;object=ec256?module-path="+hsm.module, nil, nil)
	wantErr(t, err, keys.KindInvalid, "no token of PKCS#11 module", "token="+f.tok.Label)
	_, err = open(t, f.uri(";serial=0000;object=ec256"), nil, nil)
	wantErr(t, err, keys.KindInvalid, "no token of PKCS#11 module", `serial="0000"`)
}

func TestModuleErrors(t *testing.T) {
	f := sharedFixture(t)
	_, err := open(t, "pkcs11:token="+f.tok.Label+";object=ec256?module-path=/nonexistent/libsofthsm2.so", nil, nil)
	wantErr(t, err, keys.KindInvalid, "does not exist", "install")
	notLib := testpki.WriteFile(t, t.TempDir(), "libfake.so", []byte("not a library"), 0o644)
	_, err = open(t, "pkcs11:token="+f.tok.Label+";object=ec256?module-path="+notLib, nil, nil)
	wantErr(t, err, keys.KindInvalid, "could not be loaded")
	_, err = open(t, "pkcs11:token="+f.tok.Label+";object=ec256", nil, nil)
	wantErr(t, err, keys.KindInvalid, "no PKCS#11 module is configured")
	_, err = open(t, f.uri(";object=ec256"), keys.Config{pkcs11key.ConfigModule: notLib}, nil)
	wantErr(t, err, keys.KindInvalid, "remove one of them")
	_, err = open(t, f.uri(";object=ec256"), keys.Config{"pkcs11_modul": hsm.module}, nil)
	wantErr(t, err, keys.KindInvalid, `plugin config key "pkcs11_modul" is not used`)
}

// TestModuleName resolves module-name=softhsm2 through the machine's p11-kit
// configuration or library directories.
func TestModuleName(t *testing.T) {
	f := sharedFixture(t)
	k, err := open(t, "pkcs11:token="+f.tok.Label+";object=ec256?module-name=softhsm2", nil, nil)
	if err != nil {
		if strings.Contains(err.Error(), "was not found") {
			t.Skipf("SoftHSM2 has no p11-kit module config or library under a standard name here: %v", err)
		}
		t.Fatal(err)
	}
	if spec, _ := k.Spec(); spec.Name != "EC-256" {
		t.Errorf("spec %s", spec.Name)
	}
}

// TestLeafOfAnotherKey: the token's certificate with the key's id certifies
// another key.
func TestLeafOfAnotherKey(t *testing.T) {
	f := sharedFixture(t)
	tok := newToken(t, "mixed")
	tok.GenerateKey(t, "EC-256", "mine", []byte{0x0a})
	other := f.inter.Leaf(t, "someone else", testpki.WithPublicKey(f.keys["ec384"]))
	tok.StoreCertificate(t, other.Cert, "mine", []byte{0x0a})
	tok.StoreCertificate(t, f.inter.Cert, "intermediate", nil)
	tok.StoreCertificate(t, f.root.Cert, "root", nil)
	_, err := open(t, "pkcs11:token="+tok.Label+";object=mine?module-path="+hsm.module, nil, nil)
	wantErr(t, err, keys.KindInvalid, "certifies another key", "id 0a", "someone else")
}

// TestChainSources: ca_certs completes a token leaf; cert_chain replaces the
// token's certificates; missing pieces are explained.
func TestChainSources(t *testing.T) {
	f := sharedFixture(t)
	dir := t.TempDir()
	tok := newToken(t, "partial")
	pub := tok.GenerateKey(t, "EC-256", "leafonly", []byte{7})
	leaf := f.inter.Leaf(t, "partial leaf", testpki.WithPublicKey(pub))
	tok.StoreCertificate(t, leaf.Cert, "leafonly", []byte{7})
	uri := "pkcs11:token=" + tok.Label + ";object=leafonly?module-path=" + hsm.module
	env := map[string]string{pkcs11key.EnvPIN: tok.PIN}

	_, err := open(t, uri, nil, env)
	wantErr(t, err, keys.KindInvalid, "no issuer certificate", "ca_certs=")

	ca := testpki.WriteFile(t, dir, "ca.pem", testpki.CertsPEM(f.root.Cert, f.inter.Cert), 0o644)
	k := mustOpen(t, uri, keys.Config{pkcs11key.ConfigCACerts: ca}, env)
	if got := subjects(k.Chain); len(got) != 3 || got[2] != "pkcs11 unit root" {
		t.Errorf("chain with ca_certs: %v", got)
	}
	if !strings.Contains(k.ChainSource, ca) {
		t.Errorf("chain source %q does not name ca_certs", k.ChainSource)
	}
	if _, err := k.SignMessage([]byte("x")); err != nil {
		t.Error(err)
	}

	// Only the root in ca_certs: the intermediate is missing.
	rootOnly := testpki.WriteFile(t, dir, "root.pem", testpki.CertsPEM(f.root.Cert), 0o644)
	_, err = open(t, uri, keys.Config{pkcs11key.ConfigCACerts: rootOnly}, env)
	wantErr(t, err, keys.KindInvalid, "no issuer certificate of", "pkcs11 unit intermediate")

	// cert_chain overrides the token entirely.
	other := f.root.Leaf(t, "file leaf", testpki.WithPublicKey(pub))
	chain := testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(other.Cert, f.root.Cert), 0o644)
	k = mustOpen(t, uri, keys.Config{keys.ConfigCertChain: chain}, env)
	if got := subjects(k.Chain); len(got) != 2 || got[0] != "file leaf" {
		t.Errorf("chain from cert_chain: %v", got)
	}
	if _, err := k.SignMessage([]byte("x")); err != nil {
		t.Error(err)
	}
	_, err = open(t, uri, keys.Config{keys.ConfigCertChain: chain, pkcs11key.ConfigCACerts: ca}, env)
	wantErr(t, err, keys.KindInvalid, "keep cert_chain alone")

	// A cert_chain leaf of another key: found when signing opens the token.
	otherKey := f.root.Leaf(t, "other key leaf", testpki.WithPublicKey(f.keys["ec256"]))
	wrong := testpki.WriteFile(t, dir, "wrong.pem", testpki.CertsPEM(otherKey.Cert, f.root.Cert), 0o644)
	k = mustOpen(t, uri, keys.Config{keys.ConfigCertChain: wrong}, env)
	_, err = k.SignMessage([]byte("x"))
	wantErr(t, err, keys.KindInvalid, "is not the key of the leaf certificate", "other key leaf")

	// A key without any certificate.
	tok.GenerateKey(t, "EC-256", "nocert", []byte{8})
	_, err = open(t, "pkcs11:token="+tok.Label+";object=nocert?module-path="+hsm.module, nil, env)
	wantErr(t, err, keys.KindInvalid, "has no certificate on the token", "--write-object", "cert_chain=")
}

// TestCertChainOpensTokenOnlyToSign: with cert_chain, opening the key
// (describe-key) does not load the module; signing does.
func TestCertChainOpensTokenOnlyToSign(t *testing.T) {
	f := sharedFixture(t)
	dir := t.TempDir()
	chain := testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(f.leaves["ec256"], f.inter.Cert, f.root.Cert), 0o644)
	notLib := testpki.WriteFile(t, dir, "libnot.so", []byte("not a library"), 0o644)
	cfg := keys.Config{keys.ConfigCertChain: chain}
	k := mustOpen(t, "pkcs11:token="+f.tok.Label+";object=ec256?module-path="+notLib, cfg, nil)
	if spec, err := k.Spec(); err != nil || spec.Name != "EC-256" {
		t.Fatalf("spec %v, %v", spec, err)
	}
	_, err := k.SignMessage([]byte("x"))
	wantErr(t, err, keys.KindInvalid, "could not be loaded")

	k = mustOpen(t, "pkcs11:token=absent;object=ec256?module-path="+hsm.module, cfg, nil)
	_, err = k.SignMessage([]byte("x"))
	wantErr(t, err, keys.KindInvalid, "no token of PKCS#11 module")

	k = mustOpen(t, f.uri(";object=ec256"), cfg, map[string]string{pkcs11key.EnvPIN: f.tok.PIN})
	msg := []byte("lazy")
	sig, err := k.SignMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := k.Spec()
	verify(t, f.keys["ec256"], spec, msg, sig)
}

// TestCertificateWithoutSubjectAttribute: issuers are found by parsing the
// certificates when the token's objects lack CKA_SUBJECT.
func TestCertificateWithoutSubjectAttribute(t *testing.T) {
	f := sharedFixture(t)
	tok := newToken(t, "nosubject")
	pub := tok.GenerateKey(t, "EC-256", "k", []byte{1})
	leaf := f.inter.Leaf(t, "nosubject leaf", testpki.WithPublicKey(pub))
	tok.StoreCertificate(t, leaf.Cert, "k", []byte{1})
	for _, c := range []*x509.Certificate{f.inter.Cert, f.root.Cert} {
		tok.CreateObject(t,
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE),
			pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, c.Subject.CommonName),
			// SoftHSM requires CKA_SUBJECT; a token filled by other tools
			// may carry an empty one.
			pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, []byte{}),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, c.Raw))
	}
	k := mustOpen(t, "pkcs11:token="+tok.Label+";id=%01?module-path="+hsm.module, nil, nil)
	if got := subjects(k.Chain); len(got) != 3 {
		t.Errorf("chain %v", got)
	}
}

// TestHiddenPublicObjects: a token that shows nothing before login is
// searched again after logging in, when a PIN is configured.
func TestHiddenPublicObjects(t *testing.T) {
	f := sharedFixture(t)
	tok := newToken(t, "hidden")
	var pub crypto.PublicKey
	tok.Do(t, func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) {
		params := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // P-256
		pubH, _, err := ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params), pkcs11.NewAttribute(pkcs11.CKA_LABEL, "secret"),
				pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{9}),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, true), pkcs11.NewAttribute(pkcs11.CKA_LABEL, "secret"),
				pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{9}),
			})
		if err != nil {
			t.Fatal(err)
		}
		if pub, err = pkcs11test.PublicKey(ctx, s, pubH); err != nil {
			t.Fatal(err)
		}
	})
	leaf := f.root.Leaf(t, "hidden leaf", testpki.WithPublicKey(pub))
	tok.CreateObject(t,
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE), pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, "secret"), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{9}),
		pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, leaf.Cert.RawSubject), pkcs11.NewAttribute(pkcs11.CKA_VALUE, leaf.Cert.Raw))
	tok.StoreCertificate(t, f.root.Cert, "root", nil)
	uri := "pkcs11:token=" + tok.Label + ";object=secret?module-path=" + hsm.module

	_, err := open(t, uri, nil, nil)
	wantErr(t, err, keys.KindInvalid, "no key on token", "configure the PIN")
	k := mustOpen(t, uri, nil, map[string]string{pkcs11key.EnvPIN: tok.PIN})
	spec, _ := k.Spec()
	msg := []byte("hidden")
	sig, err := k.SignMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, pub, spec, msg, sig)
}

func TestKeyNotAllowedToSign(t *testing.T) {
	f := sharedFixture(t)
	tok := newToken(t, "nosign")
	tok.Do(t, func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) {
		pubH, _, err := ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_EC_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, "k"), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{1}),
			},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
				pkcs11.NewAttribute(pkcs11.CKA_SIGN, false), pkcs11.NewAttribute(pkcs11.CKA_LABEL, "k"),
				pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{1}),
			})
		if err != nil {
			t.Fatal(err)
		}
		pub, err := pkcs11test.PublicKey(ctx, s, pubH)
		if err != nil {
			t.Fatal(err)
		}
		leaf := f.root.Leaf(t, "nosign leaf", testpki.WithPublicKey(pub))
		if _, err := ctx.CreateObject(s, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_CERTIFICATE), pkcs11.NewAttribute(pkcs11.CKA_CERTIFICATE_TYPE, pkcs11.CKC_X_509),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{1}),
			pkcs11.NewAttribute(pkcs11.CKA_SUBJECT, leaf.Cert.RawSubject), pkcs11.NewAttribute(pkcs11.CKA_VALUE, leaf.Cert.Raw),
		}); err != nil {
			t.Fatal(err)
		}
	})
	tok.StoreCertificate(t, f.root.Cert, "root", nil)
	k := mustOpen(t, "pkcs11:token="+tok.Label+";id=%01?module-path="+hsm.module, nil, map[string]string{pkcs11key.EnvPIN: tok.PIN})
	_, err := k.SignMessage([]byte("x"))
	wantErr(t, err, keys.KindInvalid, "may not sign (CKA_SIGN is false)")
}

func TestUnsupportedKeySize(t *testing.T) {
	requireSoftHSM(t)
	tok := newToken(t, "small")
	tok.Do(t, func(ctx *pkcs11.Ctx, s pkcs11.SessionHandle) {
		_, _, err := ctx.GenerateKeyPair(s, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			[]*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, 1024),
				pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}), pkcs11.NewAttribute(pkcs11.CKA_LABEL, "weak"),
				pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{1}),
			},
			[]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true), pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, "weak"), pkcs11.NewAttribute(pkcs11.CKA_ID, []byte{1})})
		if err != nil {
			t.Fatal(err)
		}
	})
	_, err := open(t, "pkcs11:token="+tok.Label+";object=weak?module-path="+hsm.module, nil, nil)
	wantErr(t, err, keys.KindInvalid, "RSA key size 1024 bits is not supported")
}

// TestConcurrentKeys opens and signs with keys of one module from several
// goroutines: the module is initialized once and finalized by the last key.
func TestConcurrentKeys(t *testing.T) {
	f := sharedFixture(t)
	env := map[string]string{pkcs11key.EnvPIN: f.tok.PIN}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			label := specs[i%2].label // EC keys: fast
			be := pkcs11key.Backend{Getenv: func(k string) string { return env[k] }}
			k, err := keys.NewOpener(be).Open(context.Background(), f.uri(";object="+label), nil)
			if err != nil {
				errs <- err
				return
			}
			defer k.Release()
			sig, err := k.SignMessage([]byte(fmt.Sprint(i)))
			if err != nil || len(sig) == 0 {
				errs <- fmt.Errorf("sign %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// After every key closed, the module is finalized: a new key works.
	k := mustOpen(t, f.uri(";object=ec256"), nil, env)
	if _, err := k.SignMessage([]byte("after")); err != nil {
		t.Error(err)
	}
}

func TestClosedKey(t *testing.T) {
	f := sharedFixture(t)
	k := mustOpen(t, f.uri(";object=ec256"), nil, map[string]string{pkcs11key.EnvPIN: f.tok.PIN})
	if err := k.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := k.SignMessage([]byte("x")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("sign after close: %v", err)
	}
	if err := k.Release(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestList lists the fixture token and opens every key by the URI listed.
func TestList(t *testing.T) {
	f := sharedFixture(t)
	inv, err := pkcs11key.List(pkcs11key.ListOptions{Module: hsm.module, Token: f.tok.Label})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Module != hsm.module || inv.Library.Manufacturer != "SoftHSM" || len(inv.Tokens) != 1 {
		t.Fatalf("inventory %+v", inv)
	}
	ti := inv.Tokens[0]
	if ti.Label != f.tok.Label || !ti.LoginRequired || ti.LoggedIn || len(ti.Keys) != len(specs) || len(ti.Certificates) != len(specs)+2 {
		t.Fatalf("token %+v", ti)
	}
	for _, e := range ti.Keys {
		var want *struct {
			label, spec string
			id          byte
		}
		for i := range specs {
			if specs[i].label == e.Label {
				want = &specs[i]
			}
		}
		if want == nil {
			t.Fatalf("unexpected key %+v", e)
		}
		if e.KeySpec != want.spec || !bytes.Equal(e.ID, []byte{want.id}) || e.PrivateKey != pkcs11key.PrivateUnknown ||
			e.Certificate == nil || !e.Certificate.Equal(f.leaves[e.Label]) {
			t.Errorf("key %s: %+v", e.Label, e)
		}
		// The URI selects exactly this key.
		k := mustOpen(t, e.URI, nil, nil)
		if !k.Chain[0].Equal(f.leaves[e.Label]) {
			t.Errorf("URI %s opened another key", e.URI)
		}
		// Close now: PKCS#11 login state belongs to the process while the
		// module stays initialized, and the wrong-PIN check below needs a
		// fresh login.
		k.Release()
	}

	// With login, private keys are confirmed.
	asked := 0
	inv, err = pkcs11key.List(pkcs11key.ListOptions{Module: hsm.module, Token: f.tok.Label, Login: true,
		PIN: func(pkcs11key.TokenInventory) (string, error) { asked++; return f.tok.PIN, nil }})
	if err != nil {
		t.Fatal(err)
	}
	if asked != 1 || !inv.Tokens[0].LoggedIn {
		t.Errorf("PIN asked %d times, logged in %v", asked, inv.Tokens[0].LoggedIn)
	}
	for _, e := range inv.Tokens[0].Keys {
		if e.PrivateKey != pkcs11key.PrivatePresent {
			t.Errorf("key %s: private key %s, want present", e.Label, e.PrivateKey)
		}
	}
	// Without --login the PIN is not asked for: the token shows its keys.
	_, err = pkcs11key.List(pkcs11key.ListOptions{Module: hsm.module, Token: f.tok.Label,
		PIN: func(pkcs11key.TokenInventory) (string, error) {
			t.Error("PIN asked without need")
			return "", pkcs11key.ErrNoPIN
		}})
	if err != nil {
		t.Fatal(err)
	}
	// A wrong PIN is ACCESS_DENIED.
	_, err = pkcs11key.List(pkcs11key.ListOptions{Module: hsm.module, Token: f.tok.Label, Login: true,
		PIN: func(pkcs11key.TokenInventory) (string, error) { return "bad-pin-000", nil }})
	wantErr(t, err, keys.KindAccessDenied, "CKR_PIN_INCORRECT")
	if strings.Contains(err.Error(), "bad-pin-000") {
		t.Errorf("error repeats the PIN: %v", err)
	}
	_, err = pkcs11key.List(pkcs11key.ListOptions{Module: hsm.module, Token: "absent"})
	wantErr(t, err, keys.KindInvalid, "token="+f.tok.Label)
}

func describe(t *testing.T, keyID string, cfg keys.Config, environ map[string]string) (keys.Spec, error) {
	t.Helper()
	be := pkcs11key.Backend{Getenv: func(k string) string { return environ[k] }}
	return keys.NewOpener(be).Describe(context.Background(), keyID, cfg)
}

// TestDescribe: describe-key reports the key spec without logging in and
// without the chain; with cert_chain it does not load the module.
func TestDescribe(t *testing.T) {
	f := sharedFixture(t)
	dir := t.TempDir()
	// A wrong PIN does not matter: describe-key does not log in.
	spec, err := describe(t, f.uri(";object=rsa3072"), nil, map[string]string{pkcs11key.EnvPIN: "wrong"})
	if err != nil || spec.Name != "RSA-3072" {
		t.Fatalf("describe: %v, %v", spec.Name, err)
	}
	notLib := testpki.WriteFile(t, dir, "libnot.so", []byte("not a library"), 0o644)
	chain := testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(f.leaves["ec384"], f.inter.Cert, f.root.Cert), 0o644)
	spec, err = describe(t, "pkcs11:token=absent;object=x?module-path="+notLib, keys.Config{keys.ConfigCertChain: chain}, nil)
	if err != nil || spec.Name != "EC-384" {
		t.Fatalf("describe with cert_chain: %v, %v", spec.Name, err)
	}
	// Configuration errors are reported as by Open.
	_, err = describe(t, f.uri(";object=ec256"), keys.Config{pkcs11key.ConfigCACerts: "relative.pem"}, nil)
	wantErr(t, err, keys.KindInvalid, "not an absolute path")
	_, err = describe(t, "pkcs11:token=absent;object=ec256?module-path="+hsm.module, nil, nil)
	wantErr(t, err, keys.KindInvalid, "no token of PKCS#11 module", "token="+f.tok.Label)
	_, err = describe(t, f.uri(""), nil, nil)
	wantErr(t, err, keys.KindInvalid, "selects 5 keys")
}

// TestDescribeCache: a key opened for signing is remembered, so that
// describe-key answers without the token; signing always reads the token
// and corrects a stale entry.
func TestDescribeCache(t *testing.T) {
	f := sharedFixture(t)
	cacheDir := t.TempDir()
	env := map[string]string{"XDG_CACHE_HOME": cacheDir, pkcs11key.EnvPIN: ""}
	tok := newToken(t, "cached")
	tok.StoreCertificate(t, f.root.Cert, "root", nil)
	add := func(spec string) {
		pub := tok.GenerateKey(t, spec, "k", []byte{1})
		tok.StoreCertificate(t, f.root.Leaf(t, "cached "+spec, testpki.WithPublicKey(pub)).Cert, "k", []byte{1})
	}
	remove := func() {
		for _, class := range []uint{pkcs11.CKO_PUBLIC_KEY, pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_CERTIFICATE} {
			tok.DestroyObjects(t, class, []byte{1})
		}
	}
	add("EC-256")
	uri := "pkcs11:token=" + tok.Label + ";object=k?module-path=" + hsm.module
	k := mustOpen(t, uri+"&pin-source=file:"+f.pin, nil, env) // the pin-source is not part of the entry
	k.Release()
	entries, _ := filepath.Glob(filepath.Join(cacheDir, "keyward", "pkcs11", "*.json"))
	if len(entries) != 1 {
		t.Fatalf("cache entries %v, want one", entries)
	}
	if fi, err := os.Stat(entries[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache entry mode %v, %v", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(entries[0]); bytes.Contains(data, []byte(tok.PIN)) {
		t.Error("the cache entry holds the PIN")
	}

	// The key is gone from the token: describe-key still answers from the
	// cache (it did not open the token), signing does not.
	remove()
	if spec, err := describe(t, uri, nil, env); err != nil || spec.Name != "EC-256" {
		t.Fatalf("describe from the cache: %v, %v", spec.Name, err)
	}
	_, err := open(t, uri, nil, env)
	wantErr(t, err, keys.KindInvalid, "no key on token")

	// Replaced by a key of another type: the entry is stale until the next
	// open for signing rewrites it.
	add("RSA-2048")
	if spec, _ := describe(t, uri, nil, env); spec.Name != "EC-256" {
		t.Errorf("stale entry: %s", spec.Name)
	}
	k = mustOpen(t, uri, nil, env)
	k.Release()
	if spec, err := describe(t, uri, nil, env); err != nil || spec.Name != "RSA-2048" {
		t.Errorf("after signing: %v, %v", spec.Name, err)
	}

	// A damaged entry is ignored.
	os.WriteFile(entries[0], []byte("{not json"), 0o600)
	if spec, err := describe(t, uri, nil, env); err != nil || spec.Name != "RSA-2048" {
		t.Errorf("damaged entry: %v, %v", spec.Name, err)
	}
}

// isKind reports whether err's chain holds a [*keys.Error] of the kind.
func isKind(err error, kind keys.ErrorKind) bool {
	var ke *keys.Error
	return errors.As(err, &ke) && ke.Kind == kind
}
