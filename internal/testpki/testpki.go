// Package testpki generates certificate chains for tests: roots,
// intermediates and code-signing leaves with the knobs tests need (key type,
// validity, key usage, EKU, CA flags, revocation URLs), issued to generated
// keys or to a given public key (an HSM's).
//
// Keys are expensive (RSA-4096 takes a second), so [Key] hands out one
// memoised key per spec and name; [FreshKey] makes a new one. Subjects carry
// C, ST and O so that notation trusted-identity DNs can match them.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TB is the part of testing.TB the package uses, so that benchmark
// programs can generate chains too.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Cert is a certificate with its private key (nil when issued to a bare
// public key).
type Cert struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

var keyCache sync.Map // "spec/name" -> crypto.Signer

// Key returns the memoised key of spec ("RSA-2048", "RSA-3072", "RSA-4096",
// "EC-256", "EC-384", "EC-521") for name: the same name gives the same key
// within a test binary, different names give different keys.
func Key(t TB, spec, name string) crypto.Signer {
	t.Helper()
	id := spec + "/" + name
	if k, ok := keyCache.Load(id); ok {
		return k.(crypto.Signer)
	}
	k := FreshKey(t, spec)
	actual, _ := keyCache.LoadOrStore(id, k)
	return actual.(crypto.Signer)
}

// FreshKey generates a new key of spec.
func FreshKey(t TB, spec string) crypto.Signer {
	t.Helper()
	k, err := GenerateKey(spec)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// GenerateKey generates a new key of spec.
func GenerateKey(spec string) (crypto.Signer, error) {
	switch spec {
	case "RSA-2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "RSA-3072":
		return rsa.GenerateKey(rand.Reader, 3072)
	case "RSA-4096":
		return rsa.GenerateKey(rand.Reader, 4096)
	case "RSA-1024": // deliberately weak, for negative tests
		return rsa.GenerateKey(rand.Reader, 1024)
	case "EC-224": // unsupported curve, for negative tests
		return ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "EC-256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EC-384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EC-521":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	}
	return nil, fmt.Errorf("testpki: unknown key spec %q", spec)
}

// Option changes the certificate template before it is signed, or the key
// it is issued to.
type Option func(*config)

type config struct {
	tmpl    *x509.Certificate
	keySpec string
	pub     crypto.PublicKey
	key     crypto.Signer
}

// WithKeySpec issues the certificate to a memoised key of spec (default
// EC-256 for leaves, EC-384 for CAs).
func WithKeySpec(spec string) Option { return func(c *config) { c.keySpec = spec } }

// WithKey issues the certificate to key.
func WithKey(key crypto.Signer) Option { return func(c *config) { c.key = key } }

// WithPublicKey issues the certificate to a public key whose private half
// lives elsewhere (a PKCS#11 token); the returned Cert has no Key.
func WithPublicKey(pub crypto.PublicKey) Option { return func(c *config) { c.pub = pub } }

// WithValidity sets NotBefore and NotAfter.
func WithValidity(notBefore, notAfter time.Time) Option {
	return func(c *config) { c.tmpl.NotBefore, c.tmpl.NotAfter = notBefore, notAfter }
}

// WithSubject replaces the subject.
func WithSubject(name pkix.Name) Option { return func(c *config) { c.tmpl.Subject = name } }

// WithTemplate lets a test change any field of the template.
func WithTemplate(f func(*x509.Certificate)) Option { return func(c *config) { f(c.tmpl) } }

// WithEKU sets the extended key usages.
func WithEKU(ekus ...x509.ExtKeyUsage) Option {
	return func(c *config) { c.tmpl.ExtKeyUsage = ekus }
}

// WithKeyUsage sets the key usage bits (Go marks the extension critical).
func WithKeyUsage(ku x509.KeyUsage) Option { return func(c *config) { c.tmpl.KeyUsage = ku } }

// WithNonCriticalKeyUsage encodes the key usage extension as not critical.
func WithNonCriticalKeyUsage() Option {
	return func(c *config) {
		c.tmpl.ExtraExtensions = append(c.tmpl.ExtraExtensions, keyUsageExtension(c.tmpl.KeyUsage, false))
	}
}

// WithoutKeyUsage omits the key usage extension.
func WithoutKeyUsage() Option { return func(c *config) { c.tmpl.KeyUsage = 0 } }

// WithOCSP sets the AIA OCSP responder URLs.
func WithOCSP(urls ...string) Option { return func(c *config) { c.tmpl.OCSPServer = urls } }

// WithCRL sets the CRL distribution point URLs.
func WithCRL(urls ...string) Option {
	return func(c *config) { c.tmpl.CRLDistributionPoints = urls }
}

// WithMaxPathLen sets a CA's path length constraint (0 with zero=true means
// "no CA below").
func WithMaxPathLen(n int) Option {
	return func(c *config) {
		c.tmpl.MaxPathLen = n
		c.tmpl.MaxPathLenZero = n == 0
	}
}

// Name returns the subject tests use: C=US, ST=WA, L=Seattle, O=keyward-test,
// CN=cn.
func Name(cn string) pkix.Name {
	return pkix.Name{
		Country:      []string{"US"},
		Province:     []string{"WA"},
		Locality:     []string{"Seattle"},
		Organization: []string{"keyward-test"},
		CommonName:   cn,
	}
}

var serial sync.Mutex
var lastSerial int64

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	s := time.Now().UnixNano()
	if s <= lastSerial {
		s = lastSerial + 1
	}
	lastSerial = s
	return big.NewInt(s)
}

func newConfig(cn, defaultSpec string) *config {
	now := time.Now()
	return &config{
		keySpec: defaultSpec,
		tmpl: &x509.Certificate{
			SerialNumber: nextSerial(),
			Subject:      Name(cn),
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
		},
	}
}

func (c *config) subjectKey(t TB, cn string) (crypto.PublicKey, crypto.Signer) {
	switch {
	case c.pub != nil:
		return c.pub, nil
	case c.key != nil:
		return c.key.Public(), c.key
	}
	k := Key(t, c.keySpec, cn)
	return k.Public(), k
}

// Root creates a self-signed root CA.
func Root(t TB, cn string, opts ...Option) *Cert {
	t.Helper()
	c := newConfig(cn, "EC-384")
	c.tmpl.IsCA = true
	c.tmpl.BasicConstraintsValid = true
	c.tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	for _, o := range opts {
		o(c)
	}
	pub, key := c.subjectKey(t, cn)
	if key == nil {
		t.Fatal("testpki: a root needs its private key")
	}
	return sign(t, c.tmpl, c.tmpl, pub, key, key)
}

// Intermediate creates a CA certificate issued by ca.
func (ca *Cert) Intermediate(t TB, cn string, opts ...Option) *Cert {
	t.Helper()
	c := newConfig(cn, "EC-384")
	c.tmpl.IsCA = true
	c.tmpl.BasicConstraintsValid = true
	c.tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	for _, o := range opts {
		o(c)
	}
	pub, key := c.subjectKey(t, cn)
	return sign(t, c.tmpl, ca.Cert, pub, key, ca.Key)
}

// Leaf creates a code-signing leaf issued by ca: critical keyUsage
// digitalSignature, EKU codeSigning, not a CA.
func (ca *Cert) Leaf(t TB, cn string, opts ...Option) *Cert {
	t.Helper()
	c := newConfig(cn, "EC-256")
	c.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	c.tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	c.tmpl.BasicConstraintsValid = true
	for _, o := range opts {
		o(c)
	}
	pub, key := c.subjectKey(t, cn)
	return sign(t, c.tmpl, ca.Cert, pub, key, ca.Key)
}

// SelfSignedLeaf creates a self-signed code-signing certificate, the chain
// of one that notation accepts.
func SelfSignedLeaf(t TB, cn string, opts ...Option) *Cert {
	t.Helper()
	c := newConfig(cn, "EC-256")
	c.tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	c.tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	c.tmpl.BasicConstraintsValid = true
	for _, o := range opts {
		o(c)
	}
	pub, key := c.subjectKey(t, cn)
	if key == nil {
		t.Fatal("testpki: a self-signed certificate needs its private key")
	}
	return sign(t, c.tmpl, c.tmpl, pub, key, key)
}

func sign(t TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key, issuerKey crypto.Signer) *Cert {
	t.Helper()
	if tmpl.SubjectKeyId == nil {
		if spki, err := x509.MarshalPKIXPublicKey(pub); err == nil {
			sum := sha1.Sum(spki)
			tmpl.SubjectKeyId = sum[:]
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, issuerKey)
	if err != nil {
		t.Fatalf("testpki: create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testpki: parse certificate: %v", err)
	}
	return &Cert{Cert: cert, Key: key}
}

var oidKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 15}

// keyUsageExtension encodes a key usage extension (RFC 5280 4.2.1.3).
func keyUsageExtension(ku x509.KeyUsage, critical bool) pkix.Extension {
	var a [2]byte
	a[0] = reverseBits(byte(ku))
	a[1] = reverseBits(byte(ku >> 8))
	l := 1
	if a[1] != 0 {
		l = 2
	}
	bits := a[:l]
	unused := 0
	last := bits[len(bits)-1]
	for unused < 8 && last&(1<<unused) == 0 {
		unused++
	}
	val, _ := asn1.Marshal(asn1.BitString{Bytes: bits, BitLength: l*8 - unused})
	return pkix.Extension{Id: oidKeyUsage, Critical: critical, Value: val}
}

func reverseBits(b byte) byte {
	var r byte
	for i := 0; i < 8; i++ {
		r = r<<1 | b&1
		b >>= 1
	}
	return r
}

// Chain returns the certificates of certs, in order.
func Chain(certs ...*Cert) []*x509.Certificate {
	out := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		out[i] = c.Cert
	}
	return out
}

// CertsPEM encodes certificates as a PEM bundle.
func CertsPEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as PKCS #8 PEM.
func KeyPEM(t TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFile writes data to dir/name with mode and returns the path.
func WriteFile(t TB, dir, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile honours the umask
		t.Fatal(err)
	}
	return p
}
