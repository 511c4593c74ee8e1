package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TokenIssuerOptions configures a [TokenIssuer].
type TokenIssuerOptions struct {
	// Users are the accounts (user name -> password) that get every
	// action they ask for on every repository.
	Users map[string]string
	// RefreshTokens are OAuth2 refresh tokens (token -> user name), as
	// `az acr login` stores them in the docker config ("identitytoken").
	RefreshTokens map[string]string
	// Public are the repositories anyone may pull, without credentials.
	Public []string
	// Lifetime is how long a token is valid (default 5 minutes).
	Lifetime time.Duration
	// KeyID names the signing key in the tokens' "kid" header (its RFC
	// 7638 thumbprint, which distribution v3.1.2 computes for the keys of
	// its rootcertbundle) instead of carrying the certificate in "x5c",
	// whose chain the registry then verifies on every request.
	KeyID bool
}

// TokenIssuer is a token service of the distribution token authentication
// specification (distribution docs/spec/auth/token.md, jwt.md, oauth.md)
// on 127.0.0.1: GET /token with optional basic credentials, and the OAuth2
// POST /token form (grant_type password or refresh_token). Its tokens are
// JWTs signed with ES256 by a key whose certificate is in CertFile, the
// registry's rootcertbundle.
type TokenIssuer struct {
	// Realm is the token endpoint, Service the registry's service name,
	// Issuer the "iss" of the tokens; CertFile is the PEM certificate the
	// registry trusts.
	Realm, Service, Issuer, CertFile string

	opts     TokenIssuerOptions
	key      *ecdsa.PrivateKey
	certDER  []byte
	lifetime atomic.Int64
	requests atomic.Int64

	mu      sync.Mutex
	refused int64
}

// StartTokenIssuer starts a token issuer, stopped when the test ends.
func StartTokenIssuer(t testing.TB, o TokenIssuerOptions) *TokenIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "testenv token issuer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	certFile := filepath.Join(t.TempDir(), "token-issuer.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ti := &TokenIssuer{
		Realm:    "http://" + l.Addr().String() + "/token",
		Service:  "keyward-test-registry",
		Issuer:   "keyward-test-issuer",
		CertFile: certFile,
		opts:     o,
		key:      key,
		certDER:  der,
	}
	lifetime := o.Lifetime
	if lifetime <= 0 {
		lifetime = 5 * time.Minute
	}
	ti.lifetime.Store(int64(lifetime))
	mux := http.NewServeMux()
	mux.HandleFunc("/token", ti.serve)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ti
}

// Requests is how many token requests the issuer answered, refused ones
// included.
func (ti *TokenIssuer) Requests() int64 { return ti.requests.Load() }

// Refused is how many token requests the issuer refused (401).
func (ti *TokenIssuer) Refused() int64 {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.refused
}

// SetLifetime changes the lifetime of the tokens issued from now on.
func (ti *TokenIssuer) SetLifetime(d time.Duration) { ti.lifetime.Store(int64(d)) }

// access is one entry of a token's "access" claim (jwt.md).
type accessClaim struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (ti *TokenIssuer) serve(w http.ResponseWriter, r *http.Request) {
	ti.requests.Add(1)
	var user string
	var authenticated, oauth bool
	var scopes []string
	switch r.Method {
	case http.MethodGet:
		scopes = r.URL.Query()["scope"]
		if u, p, ok := r.BasicAuth(); ok {
			if want, known := ti.opts.Users[u]; !known || want != p {
				ti.refuse(w, "invalid username or password")
				return
			}
			user, authenticated = u, true
		}
	case http.MethodPost:
		oauth = true
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		scopes = strings.Fields(r.PostForm.Get("scope"))
		switch r.PostForm.Get("grant_type") {
		case "refresh_token":
			u, ok := ti.opts.RefreshTokens[r.PostForm.Get("refresh_token")]
			if !ok {
				ti.refuse(w, "invalid refresh token")
				return
			}
			user, authenticated = u, true
		case "password":
			u := r.PostForm.Get("username")
			if want, known := ti.opts.Users[u]; !known || want != r.PostForm.Get("password") {
				ti.refuse(w, "invalid username or password")
				return
			}
			user, authenticated = u, true
		default:
			http.Error(w, `{"error":"unsupported_grant_type"}`, http.StatusBadRequest)
			return
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var access []accessClaim
	for _, field := range scopes {
		for _, s := range strings.Fields(field) {
			typ, rest, ok := strings.Cut(s, ":")
			i := strings.LastIndex(rest, ":")
			if ok && typ == "registry" && rest == "catalog:*" && authenticated {
				// The catalog, for any authenticated user (distribution's
				// token spec: resource type "registry", name "catalog").
				access = append(access, accessClaim{Type: typ, Name: "catalog", Actions: []string{"*"}})
				continue
			}
			if !ok || typ != "repository" || i < 0 {
				continue
			}
			name, actions := rest[:i], strings.Split(rest[i+1:], ",")
			var granted []string
			for _, a := range actions {
				if authenticated || (a == "pull" && ti.public(name)) {
					granted = append(granted, a)
				}
			}
			access = append(access, accessClaim{Type: typ, Name: name, Actions: granted})
		}
	}
	lifetime := time.Duration(ti.lifetime.Load())
	token, err := ti.sign(user, access, lifetime)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp := map[string]any{"access_token": token, "expires_in": int(lifetime / time.Second), "issued_at": time.Now().UTC().Format(time.RFC3339)}
	if !oauth {
		resp["token"] = token
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (ti *TokenIssuer) public(repo string) bool {
	for _, p := range ti.opts.Public {
		if p == repo {
			return true
		}
	}
	return false
}

func (ti *TokenIssuer) refuse(w http.ResponseWriter, msg string) {
	ti.mu.Lock()
	ti.refused++
	ti.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": msg}}})
}

// registryLeeway is the clock skew distribution v3.1.2 allows past a
// token's "exp" (registry/auth/token/token.go Leeway); the issuer moves
// "exp" back by as much, so that a token is refused once its lifetime is
// over.
const registryLeeway = 60 * time.Second

// sign returns a JWT (jwt.md) signed with ES256, the issuer's certificate
// in its x5c header.
func (ti *TokenIssuer) sign(subject string, access []accessClaim, lifetime time.Duration) (string, error) {
	now := time.Now()
	if access == nil {
		access = []accessClaim{}
	}
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ti.certDER)}}
	if ti.opts.KeyID {
		header = map[string]any{"typ": "JWT", "alg": "ES256", "kid": ti.thumbprint()}
	}
	claims := map[string]any{
		"iss":    ti.Issuer,
		"sub":    subject,
		"aud":    ti.Service,
		"exp":    now.Add(lifetime - registryLeeway).Unix(),
		"nbf":    now.Add(-time.Second).Unix(),
		"iat":    now.Unix(),
		"jti":    randomHex(8),
		"access": access,
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ti.key, digest[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + enc.EncodeToString(sig), nil
}

// thumbprint is the RFC 7638 JWK thumbprint of the signing key, with the
// coordinates unpadded as distribution v3.1.2 writes them
// (registry/auth/token/util.go).
func (ti *TokenIssuer) thumbprint() string {
	enc := base64.RawURLEncoding
	jwk := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`,
		enc.EncodeToString(ti.key.X.Bytes()), enc.EncodeToString(ti.key.Y.Bytes()))
	sum := sha256.Sum256([]byte(jwk))
	return enc.EncodeToString(sum[:])
}

// StartDistributionWithTokenAuth starts distribution v3.1.2 as
// StartDistribution does, configured for token authentication (auth.token:
// realm, service, issuer, rootcertbundle) with ti as its token service.
// user and password, one of ti's accounts, are what PushArtifact uses.
func StartDistributionWithTokenAuth(t testing.TB, ti *TokenIssuer, user, password string) *Registry {
	t.Helper()
	return startDistribution(t, access{username: user, password: password, issuer: ti})
}

// bearerAuth answers a registry's Bearer challenges with tokens fetched
// with basic credentials, one token per scope.
type bearerAuth struct {
	user, pass string
	next       http.RoundTripper

	mu     sync.Mutex
	tokens map[string]string // scope -> token
}

func (b *bearerAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	scope := repositoryScope(req.URL.Path)
	b.mu.Lock()
	tok := b.tokens[scope]
	b.mu.Unlock()
	send := func(tok string) (*http.Response, error) {
		r := req.Clone(req.Context())
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		if tok != "" {
			r.Header.Set("Authorization", "Bearer "+tok)
		}
		return b.next.RoundTrip(r)
	}
	resp, err := send(tok)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	realm, service := challengeParam(resp, "realm"), challengeParam(resp, "service")
	resp.Body.Close()
	if realm == "" {
		return nil, fmt.Errorf("401 without a Bearer realm")
	}
	treq, err := http.NewRequestWithContext(req.Context(), http.MethodGet, realm, nil)
	if err != nil {
		return nil, err
	}
	q := treq.URL.Query()
	q.Set("service", service)
	if scope != "" {
		q.Set("scope", scope)
	}
	treq.URL.RawQuery = q.Encode()
	treq.SetBasicAuth(b.user, b.pass)
	tresp, err := b.next.RoundTrip(treq)
	if err != nil {
		return nil, err
	}
	defer tresp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if tresp.StatusCode != http.StatusOK || json.NewDecoder(tresp.Body).Decode(&body) != nil {
		return nil, fmt.Errorf("token request: %s", tresp.Status)
	}
	b.mu.Lock()
	b.tokens[scope] = body.Token
	b.mu.Unlock()
	return send(body.Token)
}

// repositoryScope is the push scope of a /v2/<name>/... path.
func repositoryScope(path string) string {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		return ""
	}
	for _, sep := range []string{"/blobs/", "/manifests/", "/tags/", "/referrers/"} {
		if i := strings.Index(rest, sep); i >= 0 {
			return "repository:" + rest[:i] + ":pull,push"
		}
	}
	return ""
}

func challengeParam(resp *http.Response, name string) string {
	c := resp.Header.Get("Www-Authenticate")
	for _, p := range strings.Split(strings.TrimPrefix(c, "Bearer "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
