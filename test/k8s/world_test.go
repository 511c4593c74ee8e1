package k8s

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	admv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testenv/k8senv"
	"github.com/keyward/keyward/internal/testpki"
)

// Webhook paths of keyward serve (README, docs).
const (
	validatePath = "/v1/admission/validate"
	mutatePath   = "/v1/admission/mutate"
)

// The subjects of the signing certificates: the trust policies trust
// "main" by this identity; the stranger's root is in the trust store only
// under its own name.
const mainIdentity = "x509.subject: C=US, ST=WA, O=keyward-test, CN=k8s signer"

// selectorLabel marks the namespaces of one test: its webhooks' selector
// matches only them.
const selectorLabel = "keyward-k8s-test"

// signer is a key and certificate chain notation signs with through
// keyward's plugin.
type signer struct{ keyID, chain string }

// world is what the tests of this package stand on: the shared control
// plane, a notation with keyward's plugin, two signers ("main", trusted by
// the trust policies; "stranger", whose root is in the trust store as
// ca:stranger only), the trust store folder, and a port where no registry
// listens.
type world struct {
	cp             *k8senv.ControlPlane
	n              *testenv.Notation
	main, stranger signer
	store          string // trust store folder: x509/ca/main, x509/ca/stranger
	downHost       string // 127.0.0.1:port, nothing listening
	dir            string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	cp := k8senv.Shared(t)
	t.Logf("control plane %s (ready %v after its start)", cp.URL, cp.Started.Round(time.Millisecond))
	n := testenv.NewNotation(t)
	n.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	w := &world{cp: cp, n: n, dir: dir, store: filepath.Join(n.ConfigDir, "truststore")}
	for _, s := range []struct {
		name string
		to   *signer
	}{{"main", &w.main}, {"stranger", &w.stranger}} {
		root := testpki.Root(t, "k8s "+s.name+" root")
		key := testpki.Key(t, "EC-256", "k8s-"+s.name)
		// Both leaves carry the trusted identity: only the root tells
		// them apart.
		leaf := root.Leaf(t, "k8s signer", testpki.WithKey(key))
		n.AddTrustStore(t, "ca", s.name, root.Cert)
		*s.to = signer{
			keyID: "file:" + testpki.WriteFile(t, dir, s.name+"-key.pem", testpki.KeyPEM(t, key), 0o600),
			chain: testpki.WriteFile(t, dir, s.name+"-chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644),
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.downHost = ln.Addr().String()
	ln.Close()
	return w
}

// policy writes a trust policy file: each statement is
// {name, scopes, level, stores} with the main identity trusted.
func (w *world) policy(t *testing.T, name string, statements ...statement) string {
	t.Helper()
	doc, err := json.MarshalIndent(policyDoc(statements...), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return writeAtomic(t, filepath.Join(w.dir, name), doc)
}

// statement is one trust policy statement.
type statement struct {
	name   string
	scopes []string
	level  string   // strict, permissive, audit, skip
	stores []string // "ca:main"; none for skip
}

func policyDoc(statements ...statement) map[string]any {
	var list []any
	for _, s := range statements {
		st := map[string]any{"name": s.name, "registryScopes": s.scopes, "signatureVerification": map[string]string{"level": s.level}}
		if s.level != "skip" {
			st["trustStores"] = s.stores
			st["trustedIdentities"] = []string{mainIdentity}
		}
		list = append(list, st)
	}
	return map[string]any{"version": "1.0", "trustPolicies": list}
}

// writeAtomic writes data to path through a rename, so that a reader
// (keyward's reload) never sees half a file.
func writeAtomic(t *testing.T, path string, data []byte) string {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// images are the images of one registry the tests admit or deny, each a
// tag reference host/repository:tag (what people write in a pod spec).
type images struct {
	reg *testenv.Registry
	// signed is signed by main; its manifest digest is signedDigest.
	signed, signedDigest string
	// signed2 is another image signed by main (an init container's).
	signed2, signed2Digest string
	unsigned               string
	// untrusted is signed by stranger, whose root the policy does not
	// trust.
	untrusted string
	// tampered carries a signature manifest whose envelope (signed by
	// main, valid) was made for the signed image: notation's "content
	// descriptor mismatch".
	tampered string
	// skipped is in a repository a skip statement matches; it was never
	// pushed.
	skipped string
	// audited is signed by stranger in a repository an audit statement
	// matches.
	audited string
}

// pushImages pushes and signs the images of one registry.
func (w *world) pushImages(t *testing.T, reg *testenv.Registry) *images {
	t.Helper()
	im := &images{reg: reg, skipped: reg.Host + "/skipped/app:v1"}
	var desc ocispec.Descriptor
	im.signed, desc = w.pushSigned(t, reg, "team/app", "v1", w.main)
	im.signedDigest = desc.Digest.String()
	var desc2 ocispec.Descriptor
	im.signed2, desc2 = w.pushSigned(t, reg, "team/init", "v1", w.main)
	im.signed2Digest = desc2.Digest.String()
	ref, _ := testenv.PushArtifact(t, reg, "team/unsigned")
	im.unsigned = tag(t, ref, "v1")
	im.untrusted, _ = w.pushSigned(t, reg, "team/untrusted", "v1", w.stranger)
	im.audited, _ = w.pushSigned(t, reg, "team/audited", "v1", w.stranger)
	im.tampered = transplant(t, reg, "team/app", desc, "tampered")
	return im
}

// pushSigned pushes an image to repo, signs it with s through keyward's
// plugin, and tags it.
func (w *world) pushSigned(t *testing.T, reg *testenv.Registry, repo, tagName string, s signer) (string, ocispec.Descriptor) {
	t.Helper()
	ref, desc := testenv.PushArtifact(t, reg, repo)
	args := []string{"sign", "--plugin", "keyward", "--id", s.keyID, "--plugin-config", "cert_chain=" + s.chain, "--insecure-registry"}
	if reg.Referrers {
		// notation v1.3.2 writes the referrers tag schema unless told
		// to use the referrers API.
		args = append(args, "--force-referrers-tag=false")
	}
	w.n.MustRun(t, append(args, ref)...)
	return tagIn(t, reg, ref, tagName), desc
}

// tag points tagName at the manifest of host/repo@digest (GET the
// manifest, PUT it again under the tag) and returns host/repo:tagName.
func tag(t *testing.T, ref, tagName string) string {
	t.Helper()
	return tagIn(t, nil, ref, tagName)
}

// tagIn tags as tag does, with the credentials of reg (nil or a registry
// without any: none).
func tagIn(t *testing.T, reg *testenv.Registry, ref, tagName string) string {
	t.Helper()
	repo, dgst, _ := strings.Cut(ref, "@")
	host, path, _ := strings.Cut(repo, "/")
	get, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+path+"/manifests/"+dgst, nil)
	get.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	if reg != nil && reg.Username != "" {
		get.SetBasicAuth(reg.Username, reg.Password)
	}
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("tag %s:%s: GET the manifest: status %d", repo, tagName, resp.StatusCode)
	}
	put, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+path+"/manifests/"+tagName, bytes.NewReader(body))
	put.Header.Set("Content-Type", resp.Header.Get("Content-Type"))
	if reg != nil && reg.Username != "" {
		put.SetBasicAuth(reg.Username, reg.Password)
	}
	presp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != http.StatusCreated {
		t.Fatalf("tag %s:%s: status %d", repo, tagName, presp.StatusCode)
	}
	return repo + ":" + tagName
}

// transplant pushes a new image to repo and attaches to it a copy of the
// signature manifest of signed (same envelope, same config, its subject
// changed), then tags the new image. oras-go updates the sha256-<hex>
// referrers tag on a registry without the referrers API, as notation does.
func transplant(t *testing.T, reg *testenv.Registry, repo string, signed ocispec.Descriptor, tagName string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := remote.NewRepository(reg.Host + "/" + repo)
	if err != nil {
		t.Fatal(err)
	}
	r.PlainHTTP = true
	sigs, err := registry.Referrers(ctx, r, signed, "")
	if err != nil || len(sigs) != 1 {
		t.Fatalf("signatures of %s: %v, %v", signed.Digest, sigs, err)
	}
	raw, err := content.FetchAll(ctx, r, sigs[0])
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	ref, other := testenv.PushArtifact(t, reg, repo)
	m.Subject = &other
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Push(ctx, content.NewDescriptorFromBytes(m.MediaType, out), bytes.NewReader(out)); err != nil {
		t.Fatalf("push the transplanted signature manifest: %v", err)
	}
	return tag(t, ref, tagName)
}

// keyward is a keyward serve process.
type keyward struct {
	base    string // https://127.0.0.1:port
	config  string // its configuration file
	log     string // its stdout and stderr
	serving *k8senv.ServingCert
	cmd     *exec.Cmd
	done    chan struct{}
}

// startKeyward runs keyward serve (built from this checkout) with cfg plus
// listen and tls (a serving certificate for 127.0.0.1), and waits until
// /readyz answers 200. The test's cleanup stops it with SIGTERM and, when
// the test failed, logs its output.
func startKeyward(t *testing.T, cfg map[string]any) *keyward {
	t.Helper()
	bin := testenv.KeywardBinary(t)
	dir := t.TempDir()
	sc := k8senv.NewServingCert(t, filepath.Join(dir, "tls"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg["listen"] = addr
	cfg["tls"] = map[string]string{"certFile": sc.CertFile, "keyFile": sc.KeyFile}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	k := &keyward{
		base: "https://" + addr, config: filepath.Join(dir, "serve.json"), log: filepath.Join(dir, "keyward.log"),
		serving: sc, done: make(chan struct{}),
	}
	writeAtomic(t, k.config, data)
	logf, err := os.Create(k.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	k.cmd = exec.Command(bin, "serve", "--config", k.config)
	// No credentials of the user's: an empty docker config.
	k.cmd.Env = []string{"HOME=" + dir, "DOCKER_CONFIG=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	k.cmd.SysProcAttr = testenv.ChildProcAttr()
	if err := k.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(10 * time.Second):
			k.cmd.Process.Kill()
			<-k.done
		}
		if t.Failed() {
			t.Logf("keyward serve output (%s):\n%s", k.log, testenv.Tail(k.log, 60))
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(sc.CAPEM)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-k.done:
			t.Fatalf("keyward serve exited: %v\n%s", k.cmd.ProcessState, testenv.Tail(k.log, 40))
		default:
		}
		resp, err := client.Get(k.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyward serve was not ready within 30s (%v)\n%s", err, testenv.Tail(k.log, 40))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// output returns what keyward serve has logged so far.
func (k *keyward) output(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(k.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// webhookRules are the objects keyward's webhooks review: Pods (and their
// ephemeral containers) and every kind with a pod template (issue 12,
// "What to build" 2).
var webhookRules = []admv1.RuleWithOperations{
	rule("", []string{"pods", "pods/ephemeralcontainers", "replicationcontrollers"}),
	rule("apps", []string{"deployments", "statefulsets", "daemonsets", "replicasets"}),
	rule("batch", []string{"jobs", "cronjobs"}),
}

func rule(group string, resources []string) admv1.RuleWithOperations {
	return admv1.RuleWithOperations{
		Operations: []admv1.OperationType{admv1.Create, admv1.Update},
		Rule:       admv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: resources},
	}
}

// register registers keyward's validating and mutating webhooks
// (clientConfig.url + caBundle, failurePolicy: Fail, as the shipped
// configuration) for the namespaces labelled selectorLabel=group, and
// waits until both are enforced: a dry-run Pod of probeDenied is
// forbidden, and a dry-run Pod of probePinned comes back with
// probePinned@probeDigest.
func (k *keyward) register(t *testing.T, cp *k8senv.ControlPlane, group, probeNS, probeDenied, probePinned, probeDigest string) {
	t.Helper()
	k.registerWith(t, cp, group, func(ctx context.Context) error {
		if _, err := cp.DryRunPod(ctx, podOf(probeNS, "probe-denied", probeDenied)); !apierrors.IsForbidden(err) {
			return fmt.Errorf("dry-run pod of %s: %v, want Forbidden", probeDenied, err)
		}
		p, err := cp.DryRunPod(ctx, podOf(probeNS, "probe-pinned", probePinned))
		if err != nil {
			return fmt.Errorf("dry-run pod of %s: %v", probePinned, err)
		}
		if got, want := p.Spec.Containers[0].Image, probePinned+"@"+probeDigest; got != want {
			return fmt.Errorf("dry-run pod of %s: image %q, want %q", probePinned, got, want)
		}
		return nil
	})
}

// registerWith registers keyward's webhooks as register does, and waits
// until enforced (see k8senv.ControlPlane.InstallWebhooks) returns nil.
func (k *keyward) registerWith(t *testing.T, cp *k8senv.ControlPlane, group string, enforced func(ctx context.Context) error) {
	t.Helper()
	fail, none := admv1.Fail, admv1.SideEffectClassNone
	timeout := int32(10)
	selector := &metav1.LabelSelector{MatchLabels: map[string]string{selectorLabel: group}}
	vURL, mURL := k.base+validatePath, k.base+mutatePath
	name := "keyward-" + group
	ifNeeded := admv1.IfNeededReinvocationPolicy
	v := &admv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admv1.ValidatingWebhook{{
			Name:                    "validate.keyward.test",
			ClientConfig:            admv1.WebhookClientConfig{URL: &vURL, CABundle: k.serving.CAPEM},
			Rules:                   webhookRules,
			NamespaceSelector:       selector,
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	m := &admv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admv1.MutatingWebhook{{
			Name:                    "mutate.keyward.test",
			ClientConfig:            admv1.WebhookClientConfig{URL: &mURL, CABundle: k.serving.CAPEM},
			Rules:                   webhookRules,
			NamespaceSelector:       selector,
			FailurePolicy:           &fail,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
			ReinvocationPolicy:      &ifNeeded,
		}},
	}
	cp.InstallWebhooks(t, v, m, enforced)
}

// podOf is a Pod with one container "app" running image.
func podOf(ns, name, image string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

// baseConfig is a keyward serve configuration over policy and the world's
// trust store, the registries reached over plain HTTP.
func (w *world) baseConfig(policy string, hosts ...string) map[string]any {
	return map[string]any{
		"policy":   map[string]string{"trustPolicy": policy, "trustStore": w.store},
		"registry": map[string]any{"plainHTTPHosts": append(hosts, w.downHost)},
		"timeouts": map[string]string{"request": "8s", "registryRequest": "2s"},
	}
}

// denied checks that err is a Forbidden from an admission webhook whose
// message names the image, the container, and the failing check: one of
// checks.
func denied(t *testing.T, err error, image, container string, checks ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("admitted; want denied: image %s of container %s", image, container)
		return
	}
	msg := err.Error()
	if !apierrors.IsForbidden(err) || !strings.Contains(msg, "denied the request") {
		t.Errorf("want an admission webhook's Forbidden; got %v", err)
		return
	}
	if !strings.Contains(msg, image) || !strings.Contains(msg, container) {
		t.Errorf("the message does not name image %q and container %q: %s", image, container, msg)
	}
	for _, c := range checks {
		if strings.Contains(msg, c) {
			return
		}
	}
	t.Errorf("the message does not name the failing check (one of %q): %s", checks, msg)
}

// Failing checks as the messages name them: notation's reasons (which
// keyward reproduces) or keyward's error kinds (verify-result.schema.json).
var (
	checkNoSignature = []string{"no signature", "no-signature"}
	checkUntrusted   = []string{"does not contain any trusted certificate", "authenticity"}
	checkTampered    = []string{"content descriptor mismatch", "targetArtifact"}
	checkDown        = []string{"cannot reach registry", "connection refused"}
)
