package serve

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

const signerIdentity = "x509.subject: C=US, ST=WA, O=keyward-test, CN=serve signer"

// world is a notation with the keyward plugin, a signing key whose root is
// in a trust store, a trust policy trusting it for every scope, and a
// registry process.
type world struct {
	n             *testenv.Notation
	keyID, chain  string
	store, policy string
	reg           *testenv.Registry
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldOn(t, testenv.StartDistribution(t))
}

// newWorldOn is newWorld with the registry given.
func newWorldOn(t testing.TB, reg *testenv.Registry) *world {
	t.Helper()
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	root := testpki.Root(t, "serve root")
	key := testpki.Key(t, "EC-256", "serve")
	leaf := root.Leaf(t, "serve signer", testpki.WithKey(key))
	n.AddTrustStore(t, "ca", "serve", root.Cert)
	policy, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{map[string]any{
		"name": "all", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "strict"},
		"trustStores": []string{"ca:serve"}, "trustedIdentities": []string{signerIdentity}}}})
	return &world{
		n:      n,
		keyID:  "file:" + testpki.WriteFile(t, dir, "key.pem", testpki.KeyPEM(t, key), 0o600),
		chain:  testpki.WriteFile(t, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644),
		store:  filepath.Join(n.ConfigDir, "truststore"),
		policy: testpki.WriteFile(t, dir, "trustpolicy.json", policy, 0o644),
		reg:    reg,
	}
}

// signed pushes an artifact to repo and signs it with the plugin.
func (w *world) signed(t *testing.T, repo string) string {
	t.Helper()
	ref, _ := testenv.PushArtifact(t, w.reg, repo)
	w.n.MustRun(t, "sign", "--plugin", "keyward", "--id", w.keyID, "--plugin-config", "cert_chain="+w.chain, "--insecure-registry", ref)
	return ref
}

// tag points tag at the manifest of host/repo@digest, by reading the
// manifest and putting it again under the tag.
func tag(t *testing.T, ref, tag string) string {
	t.Helper()
	repo, dgst, _ := strings.Cut(ref, "@")
	host, path, _ := strings.Cut(repo, "/")
	get, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+path+"/manifests/"+dgst, nil)
	get.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+path+"/manifests/"+tag, bytes.NewReader(body))
	req.Header.Set("Content-Type", resp.Header.Get("Content-Type"))
	put, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	put.Body.Close()
	if put.StatusCode != http.StatusCreated {
		t.Fatalf("tag %s: status %d", tag, put.StatusCode)
	}
	return repo + ":" + tag
}

// config is a plain HTTP configuration over the world's policy; hosts are
// reached over plain HTTP.
func (w *world) config(hosts ...string) *Config {
	return &Config{
		Listen: "127.0.0.1:0", PlainHTTP: true,
		Policy:                 PolicySet{TrustPolicy: w.policy, TrustStore: w.store},
		Registry:               RegistryConfig{PlainHTTPHosts: hosts},
		RequestTimeout:         8 * time.Second,
		RegistryRequestTimeout: 2 * time.Second,
		Cache:                  CacheConfig{TTL: time.Minute, FailureTTL: time.Minute, MaxEntries: 100},
	}
}

// countingProxy is a registry front that counts requests and may delay
// them.
type countingProxy struct {
	host     string
	requests atomic.Int64
	delay    atomic.Int64
}

func startProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		time.Sleep(time.Duration(p.delay.Load()))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// onHost rewrites host/repo@digest to another host.
func onHost(ref, host string) string { return host + ref[strings.Index(ref, "/"):] }

// serve runs s on 127.0.0.1 until the test ends; it returns the base URL
// and a function that stops the server and returns Serve's error.
func serve(t *testing.T, s *Server) (string, func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	var once sync.Once
	var serr error
	stop := func() error {
		once.Do(func() { cancel(); serr = <-done })
		return serr
	}
	t.Cleanup(func() { stop() })
	scheme := "http"
	if s.certs != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String(), stop
}

var resultSchema = sync.OnceValues(func() (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft2020
	if err := c.AddResource("verify-result.schema.json", bytes.NewReader(keyward.VerifyResultSchema())); err != nil {
		return nil, err
	}
	return c.Compile("verify-result.schema.json")
})

// post calls POST /v1/verify and checks each result against
// verify-result.schema.json.
func post(t *testing.T, client *http.Client, base string, refs ...string) []*verify.ReferenceResult {
	t.Helper()
	body, _ := json.Marshal(VerifyRequest{References: refs})
	resp, err := client.Post(base+"/v1/verify", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var raw struct{ Results []json.RawMessage }
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	schema, err := resultSchema()
	if err != nil {
		t.Fatal(err)
	}
	var out []*verify.ReferenceResult
	for _, r := range raw.Results {
		var v any
		_ = json.Unmarshal(r, &v)
		if err := schema.Validate(v); err != nil {
			t.Fatalf("result does not match verify-result.schema.json: %v\n%s", err, r)
		}
		var res verify.ReferenceResult
		if err := json.Unmarshal(r, &res); err != nil {
			t.Fatal(err)
		}
		out = append(out, &res)
	}
	if len(out) != len(refs) {
		t.Fatalf("%d results for %d references", len(out), len(refs))
	}
	return out
}

// keywardVerify runs keyward verify -o json and returns its results by
// reference.
func keywardVerify(t *testing.T, w *world, hosts []string, refs ...string) map[string]*verify.ReferenceResult {
	t.Helper()
	args := []string{"verify", "-o", "json", "--policy", w.policy, "--trust-store", w.store}
	for _, h := range hosts {
		args = append(args, "--insecure-registry", h)
	}
	cmd := exec.Command(testenv.KeywardBinary(t), append(args, refs...)...)
	cmd.Env = append(os.Environ(), "HOME="+w.n.Home, "DOCKER_CONFIG="+t.TempDir())
	out, _ := cmd.Output()
	m := map[string]*verify.ReferenceResult{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r verify.ReferenceResult
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("keyward verify printed %q: %v", out, err)
		}
		m[r.Reference] = &r
	}
	return m
}

// same compares two results but for their timings.
func same(t *testing.T, got, want *verify.ReferenceResult) {
	t.Helper()
	g, wnt := *got, *want
	g.ElapsedMS, wnt.ElapsedMS = 0, 0
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(wnt)
	if !bytes.Equal(gb, wb) {
		t.Errorf("serve and keyward verify differ:\nserve:  %s\nverify: %s", gb, wb)
	}
}

// TestVerifyMatchesKeywardVerify checks that POST /v1/verify answers what
// keyward verify -o json prints, for a signed artifact (by digest and by
// tag), an unsigned one, one signed by an untrusted key, a reference that
// does not parse, and a registry that is down; then that a repeated
// request is served from the cache without a registry request, and that a
// tag is resolved again each time.
func TestVerifyMatchesKeywardVerify(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	unsigned, _ := testenv.PushArtifact(t, w.reg, "team/unsigned")

	// Signed by a key whose root is in no trust store.
	other := testenv.NewNotation(t)
	other.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	stranger := testpki.Root(t, "stranger root")
	skey := testpki.Key(t, "EC-256", "stranger")
	sleaf := stranger.Leaf(t, "serve signer", testpki.WithKey(skey))
	untrusted, _ := testenv.PushArtifact(t, w.reg, "team/untrusted")
	other.MustRun(t, "sign", "--plugin", "keyward", "--id", "file:"+testpki.WriteFile(t, dir, "k.pem", testpki.KeyPEM(t, skey), 0o600),
		"--plugin-config", "cert_chain="+testpki.WriteFile(t, dir, "c.pem", testpki.CertsPEM(sleaf.Cert, stranger.Cert), 0o644),
		"--insecure-registry", untrusted)

	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downHost := down.Addr().String()
	down.Close()

	proxy := startProxy(t, w.reg.Host)
	hosts := []string{w.reg.Host, proxy.host, downHost}
	tagged := tag(t, signed, "latest")
	refs := []string{onHost(signed, proxy.host), onHost(tagged, proxy.host), unsigned, untrusted, downHost + "/team/app:v1", "not a reference"}

	s, err := New(w.config(hosts...), Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	got := post(t, http.DefaultClient, base, refs...)
	want := keywardVerify(t, w, hosts, refs[:5]...)
	for i, ref := range refs[:5] {
		if want[ref] == nil {
			t.Fatalf("keyward verify has no result for %s", ref)
		}
		same(t, got[i], want[ref])
	}
	if !got[0].Verified || !got[1].Verified || got[1].Tag != "latest" {
		t.Errorf("signed: %+v %+v", got[0], got[1])
	}
	for i, kind := range map[int]verify.ArtifactErrorKind{2: verify.ErrorNoSignature, 3: verify.ErrorVerificationFailed, 4: verify.ErrorResolve, 5: verify.ErrorResolve} {
		if got[i].Verified || got[i].Error == nil || got[i].Error.Kind != kind {
			t.Errorf("%s: verified %v, error %+v; want %s", refs[i], got[i].Verified, got[i].Error, kind)
		}
	}

	// The digest reference again: from the cache, no registry request.
	before := proxy.requests.Load()
	again := post(t, http.DefaultClient, base, refs[0])
	if n := proxy.requests.Load() - before; n != 0 {
		t.Errorf("a cached verdict cost %d registry requests", n)
	}
	same(t, again[0], got[0])
	// The tag is resolved again (and only resolved).
	before = proxy.requests.Load()
	post(t, http.DefaultClient, base, refs[1])
	if n := proxy.requests.Load() - before; n < 1 || n > 2 {
		t.Errorf("a tag reference with a cached verdict cost %d registry requests, want its resolution", n)
	}
}

// TestMovedTag checks that a tag moved to an unsigned artifact is not
// answered with the cached verdict of the signed one.
func TestMovedTag(t *testing.T) {
	w := newWorld(t)
	tagged := tag(t, w.signed(t, "team/moving"), "latest")
	s, err := New(w.config(w.reg.Host), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r := s.Verify(ctx, tagged); !r.Verified {
		t.Fatalf("before the move: %+v", r.Error)
	}
	unsigned, _ := testenv.PushArtifact(t, w.reg, "team/moving")
	tag(t, unsigned, "latest")
	if r := s.Verify(ctx, tagged); r.Verified || r.Error == nil || r.Error.Kind != verify.ErrorNoSignature {
		t.Errorf("after the move: verified %v, error %+v", r.Verified, r.Error)
	}
}

// TestSingleFlight checks that concurrent requests for one artifact cost
// one verification.
func TestSingleFlight(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	proxy := startProxy(t, w.reg.Host)
	proxy.delay.Store(int64(100 * time.Millisecond))
	ref := onHost(signed, proxy.host)
	s, err := New(w.config(proxy.host), Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	results := make([]*verify.ReferenceResult, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = s.Verify(context.Background(), ref) }()
	}
	wg.Wait()
	for i, r := range results {
		if !r.Verified {
			t.Errorf("call %d: %+v", i, r.Error)
		}
	}
	if v := s.cache.Verifications(); v != 1 {
		t.Errorf("%d concurrent calls ran %d verifications, want 1", n, v)
	}
	alone := proxy.requests.Load()
	// One more verification of the same artifact, uncached, costs what
	// the concurrent calls cost together.
	s2, _ := New(w.config(proxy.host), Options{})
	proxy.delay.Store(0)
	s2.Verify(context.Background(), ref)
	if once := proxy.requests.Load() - alone; once != alone {
		t.Errorf("%d concurrent calls made %d registry requests; one call makes %d", n, alone, once)
	}
}

// TestTimeoutFailsClosed checks that a verification slower than the
// request timeout is answered verified: false.
func TestTimeoutFailsClosed(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	proxy := startProxy(t, w.reg.Host)
	proxy.delay.Store(int64(400 * time.Millisecond))
	cfg := w.config(proxy.host)
	cfg.RequestTimeout = 300 * time.Millisecond
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	r := post(t, http.DefaultClient, base, onHost(signed, proxy.host))[0]
	if r.Verified || r.Error == nil {
		t.Errorf("timed out: verified %v, error %+v", r.Verified, r.Error)
	}
}

// TestGracefulShutdown checks that a request in flight when the server is
// told to stop is answered with its verdict.
func TestGracefulShutdown(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	proxy := startProxy(t, w.reg.Host)
	proxy.delay.Store(int64(300 * time.Millisecond))
	s, err := New(w.config(proxy.host), Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, stop := serve(t, s)
	waitReady(t, http.DefaultClient, base)
	done := make(chan []*verify.ReferenceResult)
	go func() { done <- post(t, http.DefaultClient, base, onHost(signed, proxy.host)) }()
	for proxy.requests.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	select {
	case r := <-done:
		if !r[0].Verified {
			t.Errorf("drained request: %+v", r[0].Error)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight was not answered")
	}
	if s.Ready() {
		t.Error("ready after shutdown")
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("still accepting connections after shutdown")
	}
}

func waitReady(t *testing.T, c *http.Client, base string) {
	t.Helper()
	for range 100 {
		if resp, err := c.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the server never became ready")
}

// TestRequestBounds checks refused bodies: empty, too many references,
// unknown fields, too large.
func TestRequestBounds(t *testing.T) {
	dir := t.TempDir()
	p := testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}`), 0o644)
	s, err := New(&Config{PlainHTTP: true, Policy: PolicySet{TrustPolicy: p, TrustStore: dir}, RequestTimeout: time.Second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	many, _ := json.Marshal(VerifyRequest{References: make([]string, MaxReferences+1)})
	for _, tc := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"references": []}`, 400, "is empty"},
		{string(many), 400, "more than the 1000 allowed"},
		{`{"refs": ["a"]}`, 400, "unknown field"},
		{`{"references": ["` + strings.Repeat("a", MaxRequestBody) + `"]}`, 413, "larger than"},
		{`{"references": ["r.example/app:v1"]}`, 200, `"skipped":true`},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/verify", strings.NewReader(tc.body)))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%.40s: status %d %s; want %d %q", tc.body, rec.Code, rec.Body, tc.status, tc.want)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("readyz before Serve: %d", rec.Code)
	}
}

// tlsPair writes a certificate for 127.0.0.1 issued by ca, and its key.
func tlsPair(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprintf("serve %d", serial)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	// Key first: a reader in between sees the new key with the old
	// certificate, which the server refuses and keeps the old pair.
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHTTPSRotation serves HTTPS on 127.0.0.1 with a certificate of a test
// CA, replaces the certificate on disk, and checks that new connections get
// the new one without a restart.
func TestHTTPSRotation(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "serve test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlsPair(t, ca, caKey, 100, certFile, keyFile)
	p := testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}`), 0o644)
	s, err := New(&Config{TLS: &TLSConfig{CertFile: certFile, KeyFile: keyFile}, Policy: PolicySet{TrustPolicy: p, TrustStore: dir}, RequestTimeout: time.Second}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	waitReady(t, client, base)
	serial := func() int64 {
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 100 {
		t.Fatalf("serial %d, want 100", got)
	}
	if r := post(t, client, base, "r.example/app:v1")[0]; !r.Skipped {
		t.Errorf("over HTTPS: %+v", r)
	}
	tlsPair(t, ca, caKey, 200, certFile, keyFile)
	if got := serial(); got != 200 {
		t.Errorf("after rotation: serial %d, want 200", got)
	}
	// A broken pair keeps the last good certificate.
	if err := os.WriteFile(certFile, []byte("not PEM"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != 200 {
		t.Errorf("with a broken certificate file: serial %d, want 200", got)
	}
	// Plain HTTP is not served on the HTTPS port.
	if resp, err := http.Get(strings.Replace(base, "https", "http", 1) + "/healthz"); err == nil && resp.StatusCode == http.StatusOK {
		t.Error("plain HTTP answered on the HTTPS listener")
	}
}

// TestRegistryCredentials verifies in a registry that requires basic
// authentication, with the credentials of the docker config folder that
// registry.dockerConfig names, and fails closed without them.
func TestRegistryCredentials(t *testing.T) {
	const user, password = "keyward", "s3cret-serve-pa55"
	reg := testenv.StartDistributionWithAuth(t, user, password)
	w := newWorldOn(t, reg)
	dockerDir := filepath.Join(w.n.Home, ".docker")
	dockerConfig, _ := json.Marshal(map[string]any{"auths": map[string]any{
		reg.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}})
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, dockerDir, "config.json", dockerConfig, 0o600)
	ref := w.signed(t, "locked/app")

	cfg := w.config(reg.Host)
	cfg.Registry.DockerConfig = dockerDir
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Verify(context.Background(), ref); !r.Verified {
		t.Errorf("with the docker config: %+v", r.Error)
	}
	s, err = New(w.config(reg.Host), Options{Getenv: func(k string) string {
		if k == "HOME" {
			return t.TempDir()
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := s.Verify(context.Background(), ref)
	if r.Verified || r.Error == nil || !strings.Contains(r.Error.Message, "no credential is configured") {
		t.Errorf("without credentials: verified %v, error %+v", r.Verified, r.Error)
	}
	if b, _ := json.Marshal(r); bytes.Contains(b, []byte(password)) {
		t.Error("the password is in a result")
	}
}

// TestRegistryCAFile verifies in a registry that serves HTTPS with a
// certificate of a private CA, trusted through registry.caFile; without it
// the reference fails closed.
func TestRegistryCAFile(t *testing.T) {
	reg := testenv.StartDistributionTLS(t)
	w := newWorldOn(t, reg)
	ref, _ := testenv.PushArtifact(t, reg, "private/app")
	// notation has no CA flag; Go's TLS reads SSL_CERT_FILE.
	w.n.Env = append(w.n.Env, "SSL_CERT_FILE="+reg.CAFile)
	w.n.MustRun(t, "sign", "--plugin", "keyward", "--id", w.keyID, "--plugin-config", "cert_chain="+w.chain, ref)

	cfg := w.config()
	cfg.Registry.CAFile = reg.CAFile
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Verify(context.Background(), ref); !r.Verified {
		t.Errorf("with registry.caFile: %+v", r.Error)
	}
	s, err = New(w.config(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Verify(context.Background(), ref); r.Verified || r.Error == nil || !strings.Contains(r.Error.Message, "does not trust") {
		t.Errorf("without registry.caFile: verified %v, error %+v", r.Verified, r.Error)
	}
	cfg.Registry.CAFile = w.policy // not PEM
	if _, err := New(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("a CA file without certificates: %v", err)
	}
}
