package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"github.com/keyward/keyward/internal/testpki"
)

// Registry is an OCI registry process on 127.0.0.1, stopped when the test
// that started it ends.
type Registry struct {
	Host      string // "127.0.0.1:port"
	Referrers bool   // whether it serves the OCI 1.1 referrers API
	Log       string // file holding the process's stdout and stderr
	// Username and Password are the credentials the registry requires,
	// empty when it requires none (see StartDistributionWithAuth).
	Username, Password string
	// CAFile is the PEM file of the CA that issued the registry's TLS
	// certificate, empty when it serves plain HTTP (see
	// StartDistributionTLS).
	CAFile string
	// Issuer is the token service of a registry started by
	// StartDistributionWithTokenAuth.
	Issuer *TokenIssuer

	rootCAs *x509.CertPool // trusts CAFile

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
}

const (
	startTimeout = 20 * time.Second // until GET /v2/ answers
	stopTimeout  = 5 * time.Second  // between SIGTERM and SIGKILL
	startTries   = 5                // ports tried when one is taken meanwhile
)

// StartOlareg starts olareg v0.1.2, which serves the OCI 1.1 referrers API,
// with directory storage in t.TempDir(), pushes and deletes enabled.
func StartOlareg(t testing.TB) *Registry {
	t.Helper()
	bin := Tool(t, "olareg")
	dir := t.TempDir()
	reg, err := startRegistry(t, "olareg", true, func(port int) ([]string, []string, error) {
		return []string{bin, "serve", "--addr", "127.0.0.1", "--port", fmt.Sprint(port),
			"--store-type", "dir", "--dir", filepath.Join(dir, "data"), "--api-delete", "-v", "info"}, nil, nil
	}, access{})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return reg
}

// StartDistribution starts distribution v3.1.2 (the `registry` binary),
// which has no referrers API, so that notation falls back to the
// sha256-<hex> tag. Its configuration file and filesystem storage are in
// t.TempDir(), with http.secret set and deletes enabled.
func StartDistribution(t testing.TB) *Registry {
	t.Helper()
	return startDistribution(t, access{})
}

// StartDistributionWithAuth starts distribution as StartDistribution does,
// requiring HTTP basic authentication (an htpasswd file with one bcrypt
// entry) with username and password for every request.
func StartDistributionWithAuth(t testing.TB, username, password string) *Registry {
	t.Helper()
	if username == "" || password == "" {
		t.Fatal("testenv: StartDistributionWithAuth needs a username and a password")
	}
	return startDistribution(t, access{username: username, password: password})
}

// StartDistributionTLS starts distribution as StartDistribution does,
// serving HTTPS only, with a certificate for 127.0.0.1 issued by a CA of its
// own whose certificate is in reg.CAFile.
func StartDistributionTLS(t testing.TB) *Registry {
	t.Helper()
	return startDistribution(t, access{tls: true})
}

// access is how clients reach a registry: credentials, TLS (requested by
// tls; caFile is the CA startDistribution made for it).
type access struct {
	username, password string
	tls                bool
	caFile             string
	issuer             *TokenIssuer // token authentication instead of htpasswd
}

func startDistribution(t testing.TB, a access) *Registry {
	t.Helper()
	bin := Tool(t, "registry")
	dir := t.TempDir()
	authConf := ""
	if a.issuer != nil {
		authConf = fmt.Sprintf("auth:\n  token:\n    realm: %q\n    service: %q\n    issuer: %q\n    rootcertbundle: %q\n",
			a.issuer.Realm, a.issuer.Service, a.issuer.Issuer, a.issuer.CertFile)
	} else if a.username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(a.password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, fmt.Appendf(nil, "%s:%s\n", a.username, hash), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
		authConf = fmt.Sprintf("auth:\n  htpasswd:\n    realm: keyward-test\n    path: %q\n", htpasswd)
	}
	tlsConf := ""
	if a.tls {
		ca := testpki.Root(t, "testenv registry CA")
		server := ca.Leaf(t, "testenv registry 127.0.0.1",
			testpki.WithEKU(x509.ExtKeyUsageServerAuth),
			testpki.WithKeyUsage(x509.KeyUsageDigitalSignature),
			testpki.WithTemplate(func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} }))
		cert := testpki.WriteFile(t, dir, "server.pem", testpki.CertsPEM(server.Cert, ca.Cert), 0o644)
		key := testpki.WriteFile(t, dir, "server.key", testpki.KeyPEM(t, server.Key), 0o600)
		a.caFile = testpki.WriteFile(t, dir, "ca.pem", testpki.CertsPEM(ca.Cert), 0o644)
		tlsConf = fmt.Sprintf("  tls:\n    certificate: %q\n    key: %q\n", cert, key)
	}
	reg, err := startRegistry(t, "distribution", false, func(port int) ([]string, []string, error) {
		conf := filepath.Join(dir, "config.yml")
		data := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: 127.0.0.1:%d
  secret: %s
%s%s`, filepath.Join(dir, "data"), port, randomHex(16), tlsConf, authConf)
		if err := os.WriteFile(conf, []byte(data), 0o600); err != nil {
			return nil, nil, err
		}
		// Traces would go to an OTLP collector on localhost:4318 by default.
		return []string{bin, "serve", conf}, []string{"OTEL_TRACES_EXPORTER=none"}, nil
	}, a)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return reg
}

// startRegistry starts the registry command returns for a free port and
// waits until GET /v2/ answers. When the port was taken in between, it tries
// another one.
func startRegistry(t testing.TB, name string, referrers bool, command func(port int) (argv, env []string, err error), a access) (*Registry, error) {
	t.Helper()
	logFile := filepath.Join(t.TempDir(), name+".log")
	var err error
	for range startTries {
		var port int
		port, err = freePort()
		if err != nil {
			return nil, err
		}
		var argv, env []string
		argv, env, err = command(port)
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		var reg *Registry
		reg, err = startProcess(t, argv, env, logFile)
		if err != nil {
			return nil, fmt.Errorf("starting %s: %w", name, err)
		}
		reg.Host = fmt.Sprintf("127.0.0.1:%d", port)
		reg.Referrers = referrers
		reg.Log = logFile
		reg.Username, reg.Password = a.username, a.password
		reg.Issuer = a.issuer
		if a.caFile != "" {
			if reg.rootCAs, err = caPool(a.caFile); err != nil {
				reg.stop()
				return nil, err
			}
			reg.CAFile = a.caFile
		}
		err = reg.waitReady()
		if err == nil {
			return reg, nil
		}
		reg.stop()
		err = fmt.Errorf("starting %s (%s): %w\n--- last lines of %s:\n%s", name, strings.Join(argv, " "), err, logFile, tail(logFile, 40))
		if !strings.Contains(tail(logFile, 40), "address already in use") {
			break
		}
	}
	return nil, err
}

// startProcess starts argv with os.Environ()+env, its output going to
// logFile (appended), and registers its stop with t.Cleanup.
func startProcess(t testing.TB, argv, env []string, logFile string) (*Registry, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	reg := &Registry{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(reg.done)
	}()
	t.Cleanup(reg.stop)
	return reg, nil
}

// stop ends the process: SIGTERM, then SIGKILL if it has not exited within
// stopTimeout. It waits until the process is reaped.
func (r *Registry) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// waitReady polls GET /v2/ until the registry answers or the process exits.
func (r *Registry) waitReady() error {
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-r.done:
			return fmt.Errorf("exited before answering: %v", r.cmd.ProcessState)
		default:
		}
		resp, err := r.client(time.Second).Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (r.Issuer != nil && resp.StatusCode == http.StatusUnauthorized) {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to GET /v2/ within %v: %w", startTimeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// URL is the registry's base URL: http://host:port, or https:// with TLS.
func (r *Registry) URL() string {
	if r.CAFile != "" {
		return "https://" + r.Host
	}
	return "http://" + r.Host
}

// client is an HTTP client of the registry that trusts its CA and sends its
// credentials, if it has any.
func (r *Registry) client(timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if r.rootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: r.rootCAs, MinVersion: tls.VersionTLS12}
	}
	c := &http.Client{Timeout: timeout, Transport: tr}
	if r.Issuer != nil {
		c.Transport = &bearerAuth{user: r.Username, pass: r.Password, next: tr, tokens: map[string]string{}}
	} else if r.Username != "" {
		c.Transport = basicAuth{user: r.Username, pass: r.Password, next: tr}
	}
	return c
}

// caPool reads a PEM CA file into a certificate pool.
func caPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("no certificate in %s", file)
	}
	return pool, nil
}

// basicAuth adds HTTP basic authentication to every request.
type basicAuth struct {
	user, pass string
	next       http.RoundTripper
}

func (b basicAuth) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.SetBasicAuth(b.user, b.pass)
	return b.next.RoundTrip(req)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a file, at most 8 KiB of them.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	if len(data) > 8<<10 {
		data = data[len(data)-8<<10:]
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// maxResponse bounds what PushArtifact reads of a registry's answer.
const maxResponse = 1 << 20

// PushArtifact uploads a small OCI image manifest (an image config and one
// layer, with content unique to this call) to repo in reg over plain HTTP,
// and returns "host/repo@sha256:..." and the manifest's descriptor.
func PushArtifact(t testing.TB, reg *Registry, repo string) (ref string, desc ocispec.Descriptor) {
	t.Helper()
	img, err := newImage()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client := reg.client(0)
	base := reg.URL() + "/v2/" + repo
	for _, b := range img.Blobs {
		if err := pushBlob(ctx, client, base, b); err != nil {
			t.Fatalf("testenv: pushing a blob to %s/%s: %v", reg.Host, repo, err)
		}
	}
	if err := pushManifest(ctx, client, base, img.Manifest); err != nil {
		t.Fatalf("testenv: pushing a manifest to %s/%s: %v", reg.Host, repo, err)
	}
	return reg.Host + "/" + repo + "@" + img.Manifest.Desc.Digest.String(), img.Manifest.Desc
}

// pushBlob uploads a blob in two requests: POST to open an upload session,
// then PUT of the whole content to its location
// (OCI distribution-spec v1.1, "Pushing a blob monolithically").
func pushBlob(ctx context.Context, client *http.Client, base string, b Blob) error {
	resp, err := do(ctx, client, http.MethodPost, base+"/blobs/uploads/", "", nil)
	if err != nil {
		return err
	}
	if resp.status != http.StatusAccepted {
		return fmt.Errorf("POST %s/blobs/uploads/: %s\n%s", base, resp.statusText, resp.body)
	}
	loc, err := url.Parse(base)
	if err != nil {
		return err
	}
	loc, err = loc.Parse(resp.header.Get("Location"))
	if err != nil || resp.header.Get("Location") == "" {
		return fmt.Errorf("POST %s/blobs/uploads/: bad Location %q", base, resp.header.Get("Location"))
	}
	q := loc.Query()
	q.Set("digest", b.Desc.Digest.String())
	loc.RawQuery = q.Encode()
	resp, err = do(ctx, client, http.MethodPut, loc.String(), "application/octet-stream", b.Data)
	if err != nil {
		return err
	}
	if resp.status != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s\n%s", loc.Redacted(), resp.statusText, resp.body)
	}
	return nil
}

func pushManifest(ctx context.Context, client *http.Client, base string, m Blob) error {
	u := base + "/manifests/" + m.Desc.Digest.String()
	resp, err := do(ctx, client, http.MethodPut, u, m.Desc.MediaType, m.Data)
	if err != nil {
		return err
	}
	if resp.status != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s\n%s", u, resp.statusText, resp.body)
	}
	if got := resp.header.Get("Docker-Content-Digest"); got != "" && got != m.Desc.Digest.String() {
		return fmt.Errorf("PUT %s: the registry stored digest %s", u, got)
	}
	return nil
}

type response struct {
	status     int
	statusText string
	header     http.Header
	body       []byte
}

func do(ctx context.Context, client *http.Client, method, u, contentType string, body []byte) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return &response{status: resp.StatusCode, statusText: resp.Status, header: resp.Header, body: data}, nil
}
