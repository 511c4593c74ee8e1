package testpki

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/keyward/keyward/internal/bounded"
)

// OCSPResponder is an RFC 6960 OCSP responder on 127.0.0.1 for the
// certificates one CA issues. It answers GET (the base64 request in the
// path, RFC 6960 A.1) and POST (application/ocsp-request). Every serial is
// good until [OCSPResponder.Revoke] or [OCSPResponder.Unknown] says
// otherwise; requests about another issuer get the "unauthorized" error
// response.
type OCSPResponder struct {
	srv       *server
	issuer    *x509.Certificate
	responder *Cert // signs the responses: the issuer or a delegate
	delegated bool

	mu         sync.Mutex
	status     map[string]ocspStatus // serial (decimal) -> status
	nextUpdate time.Duration

	gets, posts atomic.Int64
}

type ocspStatus struct {
	status    int // ocsp.Good, ocsp.Revoked or ocsp.Unknown
	revokedAt time.Time
	reason    int
}

// OCSPOption configures [StartOCSP].
type OCSPOption func(*ocspConfig)

type ocspConfig struct {
	delegate   []Option
	delegated  bool
	nextUpdate time.Duration
}

// OCSPDelegated signs the responses with a delegated responder certificate
// (RFC 6960 4.2.2.2): a leaf the issuer issues with EKU id-kp-OCSPSigning,
// carried in the response. opts change that certificate.
func OCSPDelegated(opts ...Option) OCSPOption {
	return func(c *ocspConfig) { c.delegated, c.delegate = true, opts }
}

// OCSPNextUpdate sets how far after the time of each response its
// NextUpdate lies (default one hour). A negative d makes expired responses,
// which notation-core-go rejects as "expired OCSP response".
func OCSPNextUpdate(d time.Duration) OCSPOption {
	return func(c *ocspConfig) { c.nextUpdate = d }
}

// StartOCSP starts an OCSP responder for the certificates issuer issues; it
// stops when the test ends. issuer needs its private key.
func StartOCSP(t CleanupTB, issuer *Cert, opts ...OCSPOption) *OCSPResponder {
	t.Helper()
	if issuer.Key == nil {
		t.Fatal("testpki: an OCSP responder needs the issuer's private key")
	}
	cfg := ocspConfig{nextUpdate: time.Hour}
	for _, o := range opts {
		o(&cfg)
	}
	o := &OCSPResponder{
		issuer:     issuer.Cert,
		responder:  issuer,
		delegated:  cfg.delegated,
		status:     map[string]ocspStatus{},
		nextUpdate: cfg.nextUpdate,
	}
	if cfg.delegated {
		dopts := append([]Option{WithEKU(x509.ExtKeyUsageOCSPSigning)}, cfg.delegate...)
		o.responder = issuer.Leaf(t, issuer.Cert.Subject.CommonName+" OCSP responder", dopts...)
	}
	// No ServeMux: it would clean or redirect paths that hold base64.
	o.srv = startServer(t, http.HandlerFunc(o.serve))
	return o
}

// URL is the responder's address, for [WithOCSP].
func (o *OCSPResponder) URL() string { return o.srv.base + "/ocsp" }

// Responder is the certificate whose key signs the responses: the issuer,
// or the delegate with [OCSPDelegated].
func (o *OCSPResponder) Responder() *Cert { return o.responder }

// Revoke reports serial as revoked at at (reason unspecified).
func (o *OCSPResponder) Revoke(serial *big.Int, at time.Time) {
	o.RevokeWithReason(serial, at, ocsp.Unspecified)
}

// RevokeWithReason reports serial as revoked at at with an RFC 5280
// CRLReason code (ocsp.KeyCompromise, ocsp.CertificateHold, ...).
func (o *OCSPResponder) RevokeWithReason(serial *big.Int, at time.Time, reason int) {
	o.set(serial, ocspStatus{status: ocsp.Revoked, revokedAt: at, reason: reason})
}

// Unknown reports serial's status as unknown.
func (o *OCSPResponder) Unknown(serial *big.Int) { o.set(serial, ocspStatus{status: ocsp.Unknown}) }

// Good reports serial as good again.
func (o *OCSPResponder) Good(serial *big.Int) { o.set(serial, ocspStatus{status: ocsp.Good}) }

// SetDelay makes the server wait d before answering each request, to
// exercise client timeouts (notation: 2 s for OCSP, 5 s for CRLs, 15 s for
// timestamps); 0 answers at once.
func (o *OCSPResponder) SetDelay(d time.Duration) { o.srv.delay.Store(int64(d)) }

// SetDown makes every request fail with 500 Internal Server Error while down
// is true; notation then reports "revocation status is unknown" (or falls
// back to the certificate's CRL).
func (o *OCSPResponder) SetDown(down bool) { o.srv.down.Store(down) }

// SetNextUpdate changes how far after each response its NextUpdate lies; a
// negative d makes expired responses.
func (o *OCSPResponder) SetNextUpdate(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.nextUpdate = d
}

// Requests returns how many OCSP requests arrived by GET and by POST,
// answered or not (a request while down counts too).
func (o *OCSPResponder) Requests() (get, post int) {
	return int(o.gets.Load()), int(o.posts.Load())
}

func (o *OCSPResponder) set(serial *big.Int, s ocspStatus) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status[serial.String()] = s
}

// serve answers one OCSP request (RFC 6960 appendix A).
func (o *OCSPResponder) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if path != "/ocsp" && !strings.HasPrefix(path, "/ocsp/") {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodGet:
		o.gets.Add(1)
	case http.MethodPost:
		o.posts.Add(1)
	}
	if o.srv.refuse(w, r) {
		return
	}
	var der []byte
	switch r.Method {
	case http.MethodGet:
		// The path element is url-encoded base64 (RFC 6960 A.1); take it
		// from the escaped path so that an encoded "/" stays inside it.
		enc := strings.TrimPrefix(strings.TrimPrefix(path, "/ocsp"), "/")
		b64, err := url.PathUnescape(enc)
		if err == nil {
			der, err = base64.StdEncoding.DecodeString(b64)
		}
		if err != nil {
			writeOCSP(w, ocsp.MalformedRequestErrorResponse)
			return
		}
	case http.MethodPost:
		if r.Header.Get("Content-Type") != "application/ocsp-request" {
			http.Error(w, "Content-Type must be application/ocsp-request", http.StatusUnsupportedMediaType)
			return
		}
		body, err := bounded.ReadAll(r.Body, maxRequestBody, "OCSP request")
		if err != nil {
			writeOCSP(w, ocsp.MalformedRequestErrorResponse)
			return
		}
		der = body
	default:
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	resp, err := o.respond(der)
	if err != nil {
		writeOCSP(w, ocsp.InternalErrorErrorResponse)
		return
	}
	writeOCSP(w, resp)
}

func writeOCSP(w http.ResponseWriter, der []byte) {
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(der)
}

// respond builds the signed response to a DER OCSP request, or an error
// response for a malformed request or a certificate of another issuer.
func (o *OCSPResponder) respond(der []byte) ([]byte, error) {
	req, err := ocsp.ParseRequest(der)
	if err != nil {
		return ocsp.MalformedRequestErrorResponse, nil
	}
	if !o.issuedBy(req) {
		// RFC 6960 2.3: "unauthorized" when the responder is not
		// authoritative for the certificate.
		return ocsp.UnauthorizedErrorResponse, nil
	}
	o.mu.Lock()
	st, ok := o.status[req.SerialNumber.String()]
	validity := o.nextUpdate
	o.mu.Unlock()
	if !ok {
		st = ocspStatus{status: ocsp.Good}
	}
	this, next := updateTimes(validity)
	tmpl := ocsp.Response{
		Status:           st.status,
		SerialNumber:     req.SerialNumber,
		IssuerHash:       req.HashAlgorithm, // the CertID echoes the request's hash
		ThisUpdate:       this,
		NextUpdate:       next,
		RevokedAt:        st.revokedAt,
		RevocationReason: st.reason,
	}
	if o.delegated {
		tmpl.Certificate = o.responder.Cert
	}
	return ocsp.CreateResponse(o.issuer, o.responder.Cert, tmpl, o.responder.Key)
}

// issuedBy reports whether the request's CertID names this responder's CA
// (RFC 6960 4.1.1: hashes of the issuer's name and public key).
func (o *OCSPResponder) issuedBy(req *ocsp.Request) bool {
	if !req.HashAlgorithm.Available() {
		return false
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(o.issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false
	}
	h := req.HashAlgorithm.New()
	h.Write(o.issuer.RawSubject)
	if !bytes.Equal(h.Sum(nil), req.IssuerNameHash) {
		return false
	}
	h.Reset()
	h.Write(spki.PublicKey.RightAlign())
	return bytes.Equal(h.Sum(nil), req.IssuerKeyHash)
}
