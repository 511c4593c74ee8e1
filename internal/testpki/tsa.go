package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/bounded"
)

// Object identifiers of RFC 3161 time-stamping and the CMS around it.
var (
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}         // RFC 5652 5.1
	oidTSTInfo         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}  // RFC 3161 2.4.2
	oidContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}         // RFC 5652 11.1
	oidMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}         // RFC 5652 11.2
	oidSigningCertV2   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47} // RFC 5035 3
	oidExtKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}

	// TSAPolicy is the policy the test TSA stamps under by default, in the
	// "example" arc 2.999 (ITU-T X.660): not the RFC 3628 baseline policy,
	// so a token without accuracy has accuracy 0 for tspclient-go.
	TSAPolicy = asn1.ObjectIdentifier{2, 999, 3161, 1}
	// BaselinePolicy is the RFC 3628 baseline time-stamp policy, for which
	// tspclient-go assumes one second when the accuracy is absent.
	BaselinePolicy = asn1.ObjectIdentifier{0, 4, 0, 2023, 1, 1}
)

// PKIFailureInfo bits (RFC 3161 2.4.2).
const (
	failBadAlg        = 0
	failBadRequest    = 2
	failBadDataFormat = 5
)

// TSA is an RFC 3161 time-stamping authority on 127.0.0.1: HTTP POST of an
// application/timestamp-query gets an application/timestamp-reply (RFC 3161
// 3.4). The token is CMS SignedData (RFC 5652) over a TSTInfo, signed by a
// TSA leaf whose only extended key usage is a critical id-kp-timeStamping
// (RFC 3161 2.3), with content-type, message-digest and ESS
// signing-certificate-v2 (RFC 5035) signed attributes. The nonce is echoed,
// and the TSA chain (leaf first, root last) is included when certReq is
// true. Knobs make invalid tokens for negative tests.
type TSA struct {
	srv    *server
	root   *Cert
	chain  []*Cert // leaf, intermediates..., root
	policy asn1.ObjectIdentifier

	mu        sync.Mutex
	genTime   func() time.Time
	accuracy  time.Duration
	breakSig  bool
	wrongHash bool

	serial   atomic.Int64
	requests atomic.Int64
}

// TSAOption configures [StartTSA].
type TSAOption func(*tsaConfig)

type tsaConfig struct {
	keySpec      string
	root         *Cert
	intermediate bool
	leafOpts     []Option
	policy       asn1.ObjectIdentifier
}

// TSAKeySpec sets the key of the TSA leaf (default "EC-256"; "RSA-2048"
// etc. sign with sha256WithRSAEncryption).
func TSAKeySpec(spec string) TSAOption { return func(c *tsaConfig) { c.keySpec = spec } }

// TSARoot issues the TSA chain under root instead of a root of its own, so
// that a test can start an OCSP responder or CRL server for the TSA's CA
// before the TSA leaf is made.
func TSARoot(root *Cert) TSAOption { return func(c *tsaConfig) { c.root = root } }

// TSAIntermediate puts an intermediate CA between the root and the TSA leaf.
func TSAIntermediate() TSAOption { return func(c *tsaConfig) { c.intermediate = true } }

// TSALeafOptions changes the TSA leaf, for example [WithOCSP] or
// [WithValidity]. The leaf's extended key usage is a critical extension in
// ExtraExtensions; replace it with [WithTemplate] to break it.
func TSALeafOptions(opts ...Option) TSAOption {
	return func(c *tsaConfig) { c.leafOpts = append(c.leafOpts, opts...) }
}

// TSAPolicyID sets the TSA policy of the TSTInfo (default [TSAPolicy]).
func TSAPolicyID(id asn1.ObjectIdentifier) TSAOption { return func(c *tsaConfig) { c.policy = id } }

// StartTSA starts a time-stamping authority with a chain of its own (each
// TSA gets a root with a fresh key, so one TSA's root does not verify
// another's tokens); it stops when the test ends. The certificates are valid
// from 30 days ago to 30 days ahead unless [TSALeafOptions] changes the
// leaf.
func StartTSA(t CleanupTB, opts ...TSAOption) *TSA {
	t.Helper()
	cfg := tsaConfig{keySpec: "EC-256", policy: TSAPolicy}
	for _, o := range opts {
		o(&cfg)
	}
	now := time.Now()
	validity := WithValidity(now.Add(-30*24*time.Hour), now.Add(30*24*time.Hour))
	root := cfg.root
	if root == nil {
		// A fresh key per TSA: roots with one subject and one memoised key
		// would verify each other's tokens.
		root = Root(t, "keyward test TSA root", validity, WithKey(FreshKey(t, "EC-384")))
	}
	if root.Key == nil {
		t.Fatal("testpki: the TSA root needs its private key")
	}
	issuer := root
	var cas []*Cert
	if cfg.intermediate {
		issuer = root.Intermediate(t, "keyward test TSA intermediate", validity)
		cas = append(cas, issuer)
	}
	ekuExt, err := timeStampingEKU()
	if err != nil {
		t.Fatal(err)
	}
	leafOpts := append([]Option{
		validity,
		WithKeySpec(cfg.keySpec),
		WithTemplate(func(c *x509.Certificate) {
			// RFC 3161 2.3: exactly one EKU, id-kp-timeStamping, critical.
			// crypto/x509 would mark ExtKeyUsage non-critical.
			c.ExtKeyUsage = nil
			c.ExtraExtensions = append(c.ExtraExtensions, ekuExt)
		}),
	}, cfg.leafOpts...)
	leaf := issuer.Leaf(t, "keyward test TSA", leafOpts...)
	if leaf.Key == nil {
		t.Fatal("testpki: the TSA leaf needs its private key")
	}
	if _, _, err := signatureParams(leaf.Key.Public()); err != nil {
		t.Fatal(err)
	}
	a := &TSA{
		root:    root,
		chain:   append(append([]*Cert{leaf}, cas...), root),
		policy:  cfg.policy,
		genTime: time.Now,
	}
	a.serial.Store(now.UnixNano())
	a.srv = startServer(t, http.HandlerFunc(a.serve))
	return a
}

// URL is the TSA's address, for notation sign --timestamp-url.
func (a *TSA) URL() string { return a.srv.base + "/tsa" }

// Root is the TSA's root CA, for notation sign --timestamp-root-cert and for
// a "tsa" trust store.
func (a *TSA) Root() *Cert { return a.root }

// Leaf is the TSA's signing certificate.
func (a *TSA) Leaf() *Cert { return a.chain[0] }

// Chain is the TSA chain, leaf first and root last.
func (a *TSA) Chain() []*x509.Certificate { return Chain(a.chain...) }

// SetGenTime makes the TSA stamp the time now returns instead of the clock
// (nil restores the clock). genTime is truncated to whole seconds.
func (a *TSA) SetGenTime(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if now == nil {
		now = time.Now
	}
	a.genTime = now
}

// SetAccuracy sets the TSTInfo accuracy (RFC 3161 2.4.2), in whole
// microseconds; 0 omits it.
func (a *TSA) SetAccuracy(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.accuracy = d
}

// BreakSignature makes tokens whose CMS signature does not verify.
func (a *TSA) BreakSignature(broken bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.breakSig = broken
}

// WrongImprint makes tokens whose messageImprint is the hash of other data
// (same algorithm and length as requested).
func (a *TSA) WrongImprint(wrong bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.wrongHash = wrong
}

// SetDelay makes the server wait d before answering each request, to
// exercise client timeouts (notation: 2 s for OCSP, 5 s for CRLs, 15 s for
// timestamps); 0 answers at once.
func (a *TSA) SetDelay(d time.Duration) { a.srv.delay.Store(int64(d)) }

// SetDown makes every request fail with 500 Internal Server Error while down
// is true.
func (a *TSA) SetDown(down bool) { a.srv.down.Store(down) }

// Requests returns how many requests reached the TSA, including those
// refused while down.
func (a *TSA) Requests() int { return int(a.requests.Load()) }

// Token returns a DER TimeStampToken (CMS ContentInfo) over the hash h of
// message, made as the TSA would answer a request now with certReq true and
// no nonce, knobs included. Tests splice it into envelopes.
func (a *TSA) Token(message []byte, h crypto.Hash) ([]byte, error) {
	alg, ok := hashOID(h)
	if !ok {
		return nil, fmt.Errorf("testpki: hash %v is not SHA-256/384/512", h)
	}
	d := h.New()
	d.Write(message)
	return a.token(timeStampReq{
		Version: 1,
		MessageImprint: messageImprint{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: alg, Parameters: asn1.NullRawValue},
			HashedMessage: d.Sum(nil),
		},
		CertReq: true,
	})
}

// timeStampReq is TimeStampReq (RFC 3161 2.4.1).
type timeStampReq struct {
	Version        int
	MessageImprint messageImprint
	ReqPolicy      asn1.ObjectIdentifier `asn1:"optional"`
	Nonce          *big.Int              `asn1:"optional"`
	CertReq        bool                  `asn1:"optional,default:false"`
	Extensions     []pkix.Extension      `asn1:"optional,tag:0"`
}

// messageImprint is MessageImprint (RFC 3161 2.4.1).
type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

// tstInfo is TSTInfo (RFC 3161 2.4.2); ordering (DEFAULT FALSE) and
// extensions are never sent.
type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
	GenTime        time.Time     `asn1:"generalized"`
	Accuracy       accuracy      `asn1:"optional"`
	Nonce          *big.Int      `asn1:"optional"`
	TSA            asn1.RawValue `asn1:"optional"` // [0] GeneralName, encoded by hand
}

// accuracy is Accuracy (RFC 3161 2.4.2).
type accuracy struct {
	Seconds int `asn1:"optional"`
	Millis  int `asn1:"optional,tag:0"`
	Micros  int `asn1:"optional,tag:1"`
}

// pkiStatusInfo is PKIStatusInfo (RFC 3161 2.4.2, from RFC 4210).
type pkiStatusInfo struct {
	Status       int
	StatusString []asn1.RawValue `asn1:"optional"` // PKIFreeText: UTF8Strings
	FailInfo     asn1.BitString  `asn1:"optional"`
}

// timeStampResp is TimeStampResp (RFC 3161 2.4.2).
type timeStampResp struct {
	Status         pkiStatusInfo
	TimeStampToken asn1.RawValue `asn1:"optional"`
}

// contentInfo is ContentInfo (RFC 5652 3).
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, encoded by hand
}

// signedData is SignedData (RFC 5652 5.1) with one signer; certificates
// ([0] IMPLICIT) is encoded by hand and crls is never sent.
type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

// encapContentInfo is EncapsulatedContentInfo (RFC 5652 5.2).
type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     []byte `asn1:"explicit,tag:0"`
}

// signerInfo is SignerInfo version 1 (RFC 5652 5.3): sid is
// IssuerAndSerialNumber and signedAttrs ([0] IMPLICIT) is encoded by hand.
type signerInfo struct {
	Version            int
	SID                issuerAndSerialNumber
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
}

// issuerAndSerialNumber is IssuerAndSerialNumber (RFC 5652 10.2.4).
type issuerAndSerialNumber struct {
	Issuer asn1.RawValue // the issuer Name, DER
	Serial *big.Int
}

// attribute is Attribute (RFC 5652 5.3) with its SET OF values encoded by
// hand.
type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue
}

// signingCertificateV2 is SigningCertificateV2 (RFC 5035 3) naming one
// certificate.
type signingCertificateV2 struct {
	Certs []essCertIDv2
}

// essCertIDv2 is ESSCertIDv2 with hashAlgorithm left at its DEFAULT id-sha256.
type essCertIDv2 struct {
	CertHash     []byte
	IssuerSerial issuerSerial
}

// issuerSerial is IssuerSerial (RFC 5035 4); issuer is GeneralNames holding
// one directoryName.
type issuerSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// serve answers one time-stamp query (RFC 3161 3.4).
func (a *TSA) serve(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	if a.srv.refuse(w, r) {
		return
	}
	if r.URL.Path != "/tsa" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Content-Type") != "application/timestamp-query" {
		http.Error(w, "Content-Type must be application/timestamp-query", http.StatusUnsupportedMediaType)
		return
	}
	body, err := bounded.ReadAll(r.Body, maxRequestBody, "timestamp request")
	if err != nil {
		http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		return
	}
	resp, err := a.respond(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/timestamp-reply")
	_, _ = w.Write(resp)
}

// respond turns a DER TimeStampReq into a DER TimeStampResp: granted with a
// token, or rejection with a failure bit for a request it cannot serve.
func (a *TSA) respond(der []byte) ([]byte, error) {
	var req timeStampReq
	rest, err := asn1.Unmarshal(der, &req)
	if err != nil || len(rest) != 0 || req.Version != 1 {
		return rejection(failBadDataFormat, "malformed TimeStampReq")
	}
	h, ok := hashFromOID(req.MessageImprint.HashAlgorithm.Algorithm)
	if !ok || len(req.MessageImprint.HashedMessage) != h.Size() {
		return rejection(failBadAlg, "messageImprint must be SHA-256, SHA-384 or SHA-512")
	}
	if req.ReqPolicy != nil && !req.ReqPolicy.Equal(a.policy) {
		return rejection(failBadRequest, "unsupported TSA policy")
	}
	tok, err := a.token(req)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(timeStampResp{
		Status:         pkiStatusInfo{Status: 0}, // granted
		TimeStampToken: asn1.RawValue{FullBytes: tok},
	})
}

func rejection(bit int, text string) ([]byte, error) {
	fail := asn1.BitString{Bytes: make([]byte, bit/8+1), BitLength: bit + 1}
	fail.Bytes[bit/8] |= 0x80 >> (bit % 8)
	return asn1.Marshal(timeStampResp{Status: pkiStatusInfo{
		Status:       2, // rejection
		StatusString: []asn1.RawValue{{Tag: asn1.TagUTF8String, Bytes: []byte(text)}},
		FailInfo:     fail,
	}})
}

// token builds the TimeStampToken for a validated request.
func (a *TSA) token(req timeStampReq) ([]byte, error) {
	a.mu.Lock()
	genTime := a.genTime().UTC().Truncate(time.Second)
	acc := a.accuracy
	breakSig, wrongHash := a.breakSig, a.wrongHash
	a.mu.Unlock()

	leaf := a.chain[0]
	imprint := req.MessageImprint
	if wrongHash {
		h, _ := hashFromOID(imprint.HashAlgorithm.Algorithm)
		d := h.New()
		d.Write([]byte("not the message: "))
		d.Write(imprint.HashedMessage)
		imprint.HashedMessage = d.Sum(nil)
	}
	// tsa [0] GeneralName: directoryName [4] (explicit, Name is a CHOICE).
	tsaName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: leaf.Cert.RawSubject})
	if err != nil {
		return nil, err
	}
	info := tstInfo{
		Version:        1,
		Policy:         a.policy,
		MessageImprint: imprint,
		SerialNumber:   big.NewInt(a.serial.Add(1)),
		GenTime:        genTime,
		Accuracy: accuracy{
			Seconds: int(acc / time.Second),
			Millis:  int(acc % time.Second / time.Millisecond),
			Micros:  int(acc % time.Millisecond / time.Microsecond),
		},
		Nonce: req.Nonce, // RFC 3161 2.4.2: MUST echo the request's nonce
		TSA:   asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: tsaName},
	}
	content, err := asn1.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("testpki: marshal TSTInfo: %w", err)
	}

	digestAlg, sigAlg, err := signatureParams(leaf.Key.Public())
	if err != nil {
		return nil, err
	}
	h, _ := hashFromOID(digestAlg.Algorithm)
	attrs, err := a.signedAttributes(h, content)
	if err != nil {
		return nil, err
	}
	d := h.New()
	d.Write(attrs)
	sig, err := leaf.Key.Sign(rand.Reader, d.Sum(nil), h)
	if err != nil {
		return nil, fmt.Errorf("testpki: sign the timestamp: %w", err)
	}
	if breakSig {
		sig[len(sig)-1] ^= 0x01
	}
	// RFC 5652 5.3: the signature covers the DER SET OF attributes; the
	// SignerInfo carries them as [0] IMPLICIT.
	implicitAttrs := append([]byte{0xa0}, attrs[1:]...)

	sd := signedData{
		Version:          3, // RFC 5652 5.1: eContentType is not id-data
		DigestAlgorithms: []pkix.AlgorithmIdentifier{digestAlg},
		EncapContentInfo: encapContentInfo{EContentType: oidTSTInfo, EContent: content},
		SignerInfos: []signerInfo{{
			Version:            1,
			SID:                issuerAndSerialNumber{Issuer: asn1.RawValue{FullBytes: leaf.Cert.RawIssuer}, Serial: leaf.Cert.SerialNumber},
			DigestAlgorithm:    digestAlg,
			SignedAttrs:        asn1.RawValue{FullBytes: implicitAttrs},
			SignatureAlgorithm: sigAlg,
			Signature:          sig,
		}},
	}
	if req.CertReq {
		// RFC 3161 2.4.1: with certReq the TSA's certificate MUST be in
		// the certificates field; we send the whole chain.
		var certs []byte
		for _, c := range a.chain {
			certs = append(certs, c.Cert.Raw...)
		}
		if sd.Certificates.FullBytes, err = asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs}); err != nil {
			return nil, err
		}
	}
	sdDER, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("testpki: marshal SignedData: %w", err)
	}
	return asn1.Marshal(contentInfo{
		ContentType: oidSignedData,
		Content:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER},
	})
}

// signedAttributes returns the DER SET OF signed attributes: content-type,
// message-digest (h over the TSTInfo) and ESS signing-certificate-v2 naming
// the TSA leaf by SHA-256 hash and issuer/serial (RFC 3161 2.4.1, RFC 5035).
func (a *TSA) signedAttributes(h crypto.Hash, content []byte) ([]byte, error) {
	leaf := a.chain[0].Cert
	d := h.New()
	d.Write(content)
	dirName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: leaf.RawIssuer})
	if err != nil {
		return nil, err
	}
	generalNames, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: dirName})
	if err != nil {
		return nil, err
	}
	certHash := crypto.SHA256.New()
	certHash.Write(leaf.Raw)
	values := []struct {
		id  asn1.ObjectIdentifier
		val any
	}{
		{oidContentType, oidTSTInfo},
		{oidMessageDigest, d.Sum(nil)},
		{oidSigningCertV2, signingCertificateV2{Certs: []essCertIDv2{{
			CertHash:     certHash.Sum(nil),
			IssuerSerial: issuerSerial{Issuer: asn1.RawValue{FullBytes: generalNames}, Serial: leaf.SerialNumber},
		}}}},
	}
	attrs := make([]attribute, 0, len(values))
	for _, v := range values {
		der, err := asn1.Marshal(v.val)
		if err != nil {
			return nil, fmt.Errorf("testpki: marshal attribute %v: %w", v.id, err)
		}
		set, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: der})
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, attribute{Type: v.id, Values: asn1.RawValue{FullBytes: set}})
	}
	// encoding/asn1 sorts SET OF elements into DER order (X.690 11.6),
	// which is also how verifiers re-encode them.
	return asn1.MarshalWithParams(attrs, "set")
}

// signatureParams returns the CMS digest and signature algorithms for the
// TSA key.
func signatureParams(pub crypto.PublicKey) (digest, sig pkix.AlgorithmIdentifier, err error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return pkix.AlgorithmIdentifier{Algorithm: oidSHA256}, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA256}, nil
		case elliptic.P384():
			return pkix.AlgorithmIdentifier{Algorithm: oidSHA384}, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA384}, nil
		case elliptic.P521():
			return pkix.AlgorithmIdentifier{Algorithm: oidSHA512}, pkix.AlgorithmIdentifier{Algorithm: oidECDSAWithSHA512}, nil
		}
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: oidSHA256},
			pkix.AlgorithmIdentifier{Algorithm: oidSHA256WithRSA, Parameters: asn1.NullRawValue}, nil
	}
	return digest, sig, errors.New("testpki: the TSA key must be RSA or ECDSA P-256/384/521")
}

func hashFromOID(id asn1.ObjectIdentifier) (crypto.Hash, bool) {
	switch {
	case id.Equal(oidSHA256):
		return crypto.SHA256, true
	case id.Equal(oidSHA384):
		return crypto.SHA384, true
	case id.Equal(oidSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

func hashOID(h crypto.Hash) (asn1.ObjectIdentifier, bool) {
	switch h {
	case crypto.SHA256:
		return oidSHA256, true
	case crypto.SHA384:
		return oidSHA384, true
	case crypto.SHA512:
		return oidSHA512, true
	}
	return nil, false
}

// timeStampingEKU is an extended key usage extension holding only
// id-kp-timeStamping, marked critical.
func timeStampingEKU() (pkix.Extension, error) {
	val, err := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamping})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidExtKeyUsage, Critical: true, Value: val}, nil
}
