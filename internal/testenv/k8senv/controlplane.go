// Package k8senv runs a real Kubernetes control plane for keyward's
// admission-webhook tests: etcd v3.5.15 and kube-apiserver v1.31.0 on
// 127.0.0.1, on free ports, with certificates made in Go, an admin token in
// system:masters, and no controller-manager, scheduler or kubelet (Pods stay
// Pending; nothing is ever pulled). It also makes webhook serving
// certificates and registers webhook configurations.
//
// It is a test helper library, kept apart from package testenv so that
// only the tests that need a control plane compile and link client-go. The
// binaries come from scripts/tools-k8s.sh (`make tools`) in the tools
// directory of testenv; when they are not there, [Start] and [Shared]
// report it with testenv.Missing.
//
// The apiserver runs with --disable-admission-plugins=ServiceAccount (there
// is no controller to create default service accounts, so every Pod create
// would be forbidden) and --endpoint-reconciler-type=none (a loopback
// advertise address is refused by the reconciler); see
// ../shared/k8s.md of the project's notes for the measured recipe.
package k8senv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/keyward/keyward/internal/testenv"
)

// Binaries scripts/tools-k8s.sh builds into the tools directory.
const (
	APIServerBinary = "kube-apiserver"
	EtcdBinary      = "etcd"
)

const (
	readyTimeout = 60 * time.Second // until /readyz answers ok
	stopTimeout  = 10 * time.Second // between SIGTERM and SIGKILL
	startTries   = 3                // when a free port was taken meanwhile
)

// ControlPlane is an etcd and a kube-apiserver on 127.0.0.1.
type ControlPlane struct {
	// URL is the apiserver's base URL, https://127.0.0.1:port.
	URL string
	// Config is an admin client configuration (a static token of a user
	// in system:masters); copy it with rest.CopyConfig before changing it.
	Config *rest.Config
	// Clientset is a client of Config.
	Clientset *kubernetes.Clientset
	// Kubeconfig is a kubeconfig file of the same admin user (mode 0600).
	Kubeconfig string
	// Dir holds the certificates, the etcd data and the logs
	// (etcd.log, kube-apiserver.log).
	Dir string
	// Started is how long the control plane took to answer /readyz.
	Started time.Duration

	stopOnce sync.Once
	procs    []*process // in start order
}

// Start starts a control plane that the test's cleanup stops. Its files are
// in t.TempDir(). Prefer [Shared]: a start costs 2–3 s.
func Start(t testing.TB) *ControlPlane {
	t.Helper()
	apiserver, etcd := binaries(t)
	dir := t.TempDir()
	cp, err := start(dir, apiserver, etcd)
	if err != nil {
		t.Fatalf("k8senv: %v", err)
	}
	t.Cleanup(cp.Stop)
	return cp
}

var shared struct {
	mu  sync.Mutex
	cp  *ControlPlane
	err error
}

// Shared returns the control plane of this test binary, starting it on the
// first call. It runs until [StopShared], which the package's TestMain
// calls after m.Run, before testenv.Cleanup (on Linux it also dies with the
// test binary; its files are in testenv.ProcessDir, which a later test
// process removes). Tests
// that share it keep apart by namespace ([ControlPlane.Namespace]) and by
// namespace selectors on the webhooks they register.
func Shared(t testing.TB) *ControlPlane {
	t.Helper()
	apiserver, etcd := binaries(t)
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cp == nil && shared.err == nil {
		dir, err := testenv.ProcessDir()
		if err == nil {
			dir, err = os.MkdirTemp(dir, "k8senv-")
		}
		if err != nil {
			shared.err = err
		} else if shared.cp, shared.err = start(dir, apiserver, etcd); shared.err != nil {
			shared.err = fmt.Errorf("%w (files kept in %s)", shared.err, dir)
		}
	}
	if shared.err != nil {
		t.Fatalf("k8senv: %v", shared.err)
	}
	return shared.cp
}

// StopShared stops the control plane [Shared] started, if any, and removes
// its files.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.cp != nil {
		shared.cp.Stop()
		os.RemoveAll(shared.cp.Dir)
	}
	shared.cp, shared.err = nil, nil
}

// binaries returns the paths of kube-apiserver and etcd, or reports them
// missing.
func binaries(t testing.TB) (apiserver, etcd string) {
	t.Helper()
	dir := testenv.ToolsDir(t)
	for _, name := range []string{APIServerBinary, EtcdBinary} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			testenv.Missing(t, "%s is not in %s; run `make tools` (scripts/tools-k8s.sh builds kube-apiserver v1.31.0 and etcd v3.5.15)", name, dir)
			return "", ""
		}
	}
	return filepath.Join(dir, APIServerBinary), filepath.Join(dir, EtcdBinary)
}

// Stop stops the apiserver, then etcd: SIGTERM, SIGKILL after 10 s, and
// waits until both are reaped. It is safe to call more than once.
func (cp *ControlPlane) Stop() {
	cp.stopOnce.Do(func() {
		for i := len(cp.procs) - 1; i >= 0; i-- {
			cp.procs[i].stop()
		}
	})
}

func start(dir, apiserverBin, etcdBin string) (*ControlPlane, error) {
	begin := time.Now()
	pki := filepath.Join(dir, "pki")
	serving, err := newServingCert(pki, "kube-apiserver", "127.0.0.1",
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"})
	if err != nil {
		return nil, fmt.Errorf("apiserver certificate: %w", err)
	}
	saKey, saPub, err := serviceAccountKeys(pki)
	if err != nil {
		return nil, fmt.Errorf("service account keys: %w", err)
	}
	tokenBytes := make([]byte, 24)
	if _, err := rand.Read(tokenBytes); err != nil {
		return nil, err
	}
	token := hex.EncodeToString(tokenBytes)
	tokens := filepath.Join(pki, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serving.CAPEM)

	var cp *ControlPlane
	for range startTries {
		ports, perr := freePorts(3)
		if perr != nil {
			return nil, perr
		}
		etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
		cp = &ControlPlane{URL: fmt.Sprintf("https://127.0.0.1:%d", ports[2]), Dir: dir}
		var etcd, apiserver *process
		etcd, err = startProcess("etcd", filepath.Join(dir, "etcd.log"), etcdBin,
			"--name", "keyward-test", "--data-dir", filepath.Join(dir, "etcd-data"),
			"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "keyward-test="+peerURL,
			"--unsafe-no-fsync", "--log-level", "warn")
		if err == nil {
			cp.procs = append(cp.procs, etcd)
			err = waitReady(etcd, &http.Client{Timeout: time.Second}, etcdURL+"/health", "", func(body string) bool {
				return strings.Contains(body, `"health":"true"`)
			})
		}
		if err == nil {
			apiserver, err = startProcess("kube-apiserver", filepath.Join(dir, "kube-apiserver.log"), apiserverBin,
				"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
				fmt.Sprintf("--secure-port=%d", ports[2]),
				"--etcd-servers="+etcdURL,
				"--tls-cert-file="+serving.CertFile, "--tls-private-key-file="+serving.KeyFile,
				"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
				"--token-auth-file="+tokens, "--authorization-mode=RBAC",
				"--service-account-key-file="+saPub, "--service-account-signing-key-file="+saKey,
				"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
				"--service-cluster-ip-range=10.0.0.0/24",
				"--disable-admission-plugins=ServiceAccount",
				"--endpoint-reconciler-type=none", "--profiling=false")
		}
		if err == nil {
			cp.procs = append(cp.procs, apiserver)
			client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
			err = waitReady(apiserver, client, cp.URL+"/readyz", token, func(body string) bool { return body == "ok" })
		}
		if err == nil {
			break
		}
		cp.Stop()
		if !portTaken(dir) {
			return nil, err
		}
		os.RemoveAll(filepath.Join(dir, "etcd-data"))
	}
	if err != nil {
		return nil, err
	}
	cp.Started = time.Since(begin)
	cp.Config = &rest.Config{
		Host:            cp.URL,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: serving.CAPEM},
		// No client-side throttling: the tests are the only clients.
		QPS: 500, Burst: 1000,
		Timeout: 30 * time.Second,
	}
	if cp.Clientset, err = kubernetes.NewForConfig(cp.Config); err != nil {
		cp.Stop()
		return nil, err
	}
	cp.Kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(cp.Kubeconfig, kubeconfig(cp.URL, serving.CAFile, token), 0o600); err != nil {
		cp.Stop()
		return nil, err
	}
	return cp, nil
}

// portTaken reports whether a log in dir says a port was taken.
func portTaken(dir string) bool {
	for _, name := range []string{"etcd.log", "kube-apiserver.log"} {
		if strings.Contains(testenv.Tail(filepath.Join(dir, name), 40), "address already in use") {
			return true
		}
	}
	return false
}

func kubeconfig(server, caFile, token string) []byte {
	return fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: keyward-test
  cluster: {server: %q, certificate-authority: %q}
users:
- name: admin
  user: {token: %q}
contexts:
- name: keyward-test
  context: {cluster: keyward-test, user: admin}
current-context: keyward-test
`, server, caFile, token)
}

// serviceAccountKeys writes the key pair the apiserver signs and checks
// service account tokens with.
func serviceAccountKeys(dir string) (keyFile, pubFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyPEM, err := ecKeyPEM(key)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	keyFile, pubFile = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// process is a server started by this package.
type process struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{} // closed once the process has exited and been reaped
}

func startProcess(name, logFile, bin string, args ...string) (*process, error) {
	log, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = testenv.ChildProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, log: logFile, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, then SIGKILL after stopTimeout, and waits until the
// process is reaped.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady polls url (with a bearer token, if any) until it answers 200
// with a body ok accepts, the process exits, or readyTimeout passes.
func waitReady(p *process, client *http.Client, url, token string, ok func(body string) bool) error {
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v)\n--- last lines of %s:\n%s", p.name, p.cmd.ProcessState, p.log, testenv.Tail(p.log, 30))
		default:
		}
		last = probe(client, url, token, ok)
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s was not ready within %v: %v\n--- last lines of %s:\n%s", p.name, readyTimeout, last, p.log, testenv.Tail(p.log, 30))
}

func probe(client *http.Client, url, token string, ok func(string) bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !ok(strings.TrimSpace(string(body))) {
		return errors.New(resp.Status + ": " + strings.TrimSpace(string(body)))
	}
	return nil
}
