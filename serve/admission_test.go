package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/keyward/keyward/admission"
	"github.com/keyward/keyward/internal/jsonpatch"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

// admissionWorld is a world with, in its registry, an image signed by the
// trusted key (tagged v1), one unsigned, one whose only signature was
// tampered with, one signed by a key whose root is in no trust store, and
// one signed by that key in a repository an audit statement governs; and a
// registry host that fails every request, whose images a skip statement
// governs.
type admissionWorld struct {
	*world
	signed, signedTag, unsigned, tampered, untrusted, audited string
	failing                                                   *failingRegistry
	skipped                                                   string
	logs                                                      *syncBuffer
}

// failingRegistry answers every request 500 and counts them.
type failingRegistry struct {
	host     string
	requests atomic.Int64
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log lines whose msg is msg.
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func newAdmissionWorld(t *testing.T) *admissionWorld {
	t.Helper()
	return newAdmissionWorldOn(t, testenv.StartDistribution(t))
}

// newAdmissionWorldOn is newAdmissionWorld with the registry given.
func newAdmissionWorldOn(t *testing.T, reg *testenv.Registry) *admissionWorld {
	t.Helper()
	aw := &admissionWorld{world: newWorldOn(t, reg), logs: &syncBuffer{}}
	fr := &failingRegistry{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fr.requests.Add(1)
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	fr.host = strings.TrimPrefix(srv.URL, "http://")
	aw.failing, aw.skipped = fr, fr.host+"/skip/app:v1"

	aw.signed = aw.sign(t, "team/app")
	aw.signedTag = tag(t, aw.signed, "v1")
	aw.unsigned = tag(t, mustPush(t, aw.reg, "team/unsigned"), "v1")
	aw.tampered = tamperedImage(t, aw.world, aw.sign(t, "team/tampered"))
	strangerSign := strangerSigner(t)
	aw.untrusted = strangerSign(t, aw.reg, "team/untrusted")
	aw.audited = strangerSign(t, aw.reg, "team/audited")

	policy, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{
		map[string]any{"name": "skip-failing", "registryScopes": []string{fr.host + "/skip/app"}, "signatureVerification": map[string]string{"level": "skip"}},
		map[string]any{"name": "audited", "registryScopes": []string{aw.reg.Host + "/team/audited"}, "signatureVerification": map[string]string{"level": "audit"},
			"trustStores": []string{"ca:serve"}, "trustedIdentities": []string{signerIdentity}},
		map[string]any{"name": "all", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "strict"},
			"trustStores": []string{"ca:serve"}, "trustedIdentities": []string{signerIdentity}},
	}})
	aw.policy = testpki.WriteFile(t, t.TempDir(), "trustpolicy.json", policy, 0o644)
	return aw
}

// referrersFlags are notation sign's flags for reg: notation stores
// signatures under the referrers tag unless told to use the referrers API
// where there is one.
func referrersFlags(reg *testenv.Registry) []string {
	if reg.Referrers {
		return []string{"--force-referrers-tag=false"}
	}
	return nil
}

// sign pushes an artifact to repo and signs it with the trusted key.
func (aw *admissionWorld) sign(t *testing.T, repo string) string {
	t.Helper()
	ref := mustPush(t, aw.reg, repo)
	args := append([]string{"sign", "--plugin", "keyward", "--id", aw.keyID, "--plugin-config", "cert_chain=" + aw.chain, "--insecure-registry"}, referrersFlags(aw.reg)...)
	aw.n.MustRun(t, append(args, ref)...)
	return ref
}

func mustPush(t *testing.T, reg *testenv.Registry, repo string) string {
	t.Helper()
	ref, _ := testenv.PushArtifact(t, reg, repo)
	return ref
}

// strangerSigner returns a function that pushes an artifact and signs it
// with a key whose root is in no trust store (subject as the trusted
// signer's).
func strangerSigner(t *testing.T) func(*testing.T, *testenv.Registry, string) string {
	other := testenv.NewNotation(t)
	other.InstallPlugin(t, testenv.PluginBinary(t))
	dir := t.TempDir()
	root := testpki.Root(t, "stranger root")
	key := testpki.Key(t, "EC-256", "stranger")
	leaf := root.Leaf(t, "serve signer", testpki.WithKey(key))
	keyFile := testpki.WriteFile(t, dir, "k.pem", testpki.KeyPEM(t, key), 0o600)
	chain := testpki.WriteFile(t, dir, "c.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644)
	return func(t *testing.T, reg *testenv.Registry, repo string) string {
		ref := mustPush(t, reg, repo)
		args := append([]string{"sign", "--plugin", "keyward", "--id", "file:" + keyFile, "--plugin-config", "cert_chain=" + chain, "--insecure-registry"}, referrersFlags(reg)...)
		other.MustRun(t, append(args, ref)...)
		return ref
	}
}

// tamperedImage gives a new artifact in the repository of signed, a
// signed artifact, a copy of its signature whose envelope has one
// character of its signature value changed: the new artifact's only
// signature fails its integrity check.
func tamperedImage(t *testing.T, w *world, signed string) string {
	t.Helper()
	ctx := context.Background()
	name := signed[:strings.LastIndex(signed, "@")]
	repo, err := remote.NewRepository(name)
	if err != nil {
		t.Fatal(err)
	}
	repo.PlainHTTP = true
	repo.SetReferrersCapability(w.reg.Referrers)
	target, err := repo.Resolve(ctx, signed[strings.LastIndex(signed, "@")+1:])
	if err != nil {
		t.Fatal(err)
	}
	var sig ocispec.Descriptor
	if err := repo.Referrers(ctx, target, "application/vnd.cncf.notary.signature", func(refs []ocispec.Descriptor) error {
		sig = refs[0]
		return nil
	}); err != nil || sig.Digest == "" {
		t.Fatalf("signature of %s: %v", signed, err)
	}
	mb, err := content.FetchAll(ctx, repo, sig)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	eb, err := content.FetchAll(ctx, repo.Blobs(), m.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	if err := json.Unmarshal(eb, &env); err != nil {
		t.Fatalf("the envelope is not JWS JSON: %v", err)
	}
	s := []byte(env["signature"].(string))
	if s[10] == 'A' {
		s[10] = 'B'
	} else {
		s[10] = 'A'
	}
	env["signature"] = string(s)
	eb, _ = json.Marshal(env)
	layer := content.NewDescriptorFromBytes(m.Layers[0].MediaType, eb)
	if err := repo.Blobs().Push(ctx, layer, bytes.NewReader(eb)); err != nil {
		t.Fatal(err)
	}
	ref, desc := testenv.PushArtifact(t, w.reg, name[strings.Index(name, "/")+1:])
	m.Layers[0] = layer
	m.Subject = &ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	mb, _ = json.Marshal(m)
	md := content.NewDescriptorFromBytes(m.MediaType, mb)
	md.ArtifactType = m.ArtifactType
	if err := repo.Push(ctx, md, bytes.NewReader(mb)); err != nil {
		t.Fatal(err)
	}
	return ref
}

// server starts keyward serve over the world's policy, logging JSON into
// the world's buffer.
func (aw *admissionWorld) server(t *testing.T, edit ...func(*Config)) (string, *Server) {
	t.Helper()
	cfg := aw.config(aw.reg.Host, aw.failing.host)
	for _, e := range edit {
		e(cfg)
	}
	s, err := New(cfg, Options{Logger: slog.New(slog.NewJSONHandler(aw.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	waitReady(t, http.DefaultClient, base)
	return base, s
}

// review builds an AdmissionReview v1 of object.
func review(uid, group, version, kind, subResource string, op admissionv1.Operation, object, old string, dryRun bool) []byte {
	req := &admissionv1.AdmissionRequest{
		UID: k8stypes.UID("uid-" + uid), Kind: metav1.GroupVersionKind{Group: group, Version: version, Kind: kind},
		Namespace: "team", Name: "web", Operation: op, SubResource: subResource,
		DryRun: &dryRun,
	}
	if object != "" {
		req.Object = runtime.RawExtension{Raw: []byte(object)}
	}
	if old != "" {
		req.OldObject = runtime.RawExtension{Raw: []byte(old)}
	}
	b, _ := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
	return b
}

// postReview POSTs a review to path and decodes the answer, checking its
// apiVersion, kind and uid.
func postReview(t *testing.T, url string, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, data)
	}
	var in, out admissionv1.AdmissionReview
	_ = json.Unmarshal(body, &in)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil || out.Response.UID != in.Request.UID {
		t.Fatalf("answer %s to uid %s", data, in.Request.UID)
	}
	return out.Response
}

// pod is a Pod with the images given: containers, then init containers
// prefixed "init:", ephemeral containers prefixed "debug:".
func pod(images ...string) string {
	spec := map[string][]map[string]string{}
	for i, img := range images {
		list, name := "containers", fmt.Sprintf("c%d", i)
		if rest, ok := strings.CutPrefix(img, "init:"); ok {
			list, name, img = "initContainers", fmt.Sprintf("init%d", i), rest
		} else if rest, ok := strings.CutPrefix(img, "debug:"); ok {
			list, name, img = "ephemeralContainers", fmt.Sprintf("debug%d", i), rest
		}
		spec[list] = append(spec[list], map[string]string{"name": name, "image": img})
	}
	b, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": map[string]string{"name": "web", "namespace": "team"}, "spec": spec})
	return string(b)
}

func deployment(images ...string) string {
	var p map[string]any
	_ = json.Unmarshal([]byte(pod(images...)), &p)
	b, _ := json.Marshal(map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]string{"name": "web"},
		"spec": map[string]any{"replicas": 3, "template": map[string]any{"metadata": map[string]any{"labels": map[string]string{"app": "web"}}, "spec": p["spec"]}}})
	return string(b)
}

func cronJob(images ...string) string {
	var p map[string]any
	_ = json.Unmarshal([]byte(pod(images...)), &p)
	b, _ := json.Marshal(map[string]any{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": map[string]string{"name": "web"},
		"spec": map[string]any{"schedule": "* * * * *", "jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": p["spec"]}}}}})
	return string(b)
}

func denied(t *testing.T, r *admissionv1.AdmissionResponse, wants ...string) {
	t.Helper()
	if r.Allowed || r.Result == nil || r.Result.Code != http.StatusForbidden || r.Patch != nil {
		t.Fatalf("not denied: %+v", r)
	}
	for _, w := range wants {
		if !strings.Contains(r.Result.Message, w) {
			t.Errorf("the message %q does not contain %q", r.Result.Message, w)
		}
	}
}

func allowed(t *testing.T, r *admissionv1.AdmissionResponse) {
	t.Helper()
	if !r.Allowed || r.Result != nil && r.Result.Code >= 400 {
		msg := ""
		if r.Result != nil {
			msg = r.Result.Message
		}
		t.Fatalf("not allowed: %s", msg)
	}
}

// TestValidatingWebhook sends AdmissionReviews through the HTTP handler:
// signed images (by tag and by digest, in containers, init containers and
// ephemeral containers, of Pods, Deployments and CronJobs) are allowed;
// unsigned, tampered and untrusted images are denied with the image, the
// container and the failing check named, all of them at once; an image
// matched by a skip statement is allowed without a registry request; an
// audit statement's logged failure comes back as a warning; a dry run is
// judged the same and audited as one.
func TestValidatingWebhook(t *testing.T) {
	t.Run("distribution", func(t *testing.T) { testValidatingWebhook(t, testenv.StartDistribution(t)) })
	t.Run("olareg", func(t *testing.T) { testValidatingWebhook(t, testenv.StartOlareg(t)) })
}

// testValidatingWebhook is TestValidatingWebhook on reg: distribution
// has no referrers API (signatures are found through the referrers tag),
// olareg has it.
func testValidatingWebhook(t *testing.T, reg *testenv.Registry) {
	aw := newAdmissionWorldOn(t, reg)
	base, _ := aw.server(t)
	url := base + ValidatePath
	digestRef := aw.signed

	r := postReview(t, url, review("ok", "", "v1", "Pod", "", admissionv1.Create, pod(aw.signedTag, "init:"+digestRef, "debug:"+aw.signedTag), "", false))
	allowed(t, r)
	if len(r.Warnings) != 0 || r.Patch != nil {
		t.Errorf("signed: warnings %q, patch %s", r.Warnings, r.Patch)
	}
	allowed(t, postReview(t, url, review("dep", "apps", "v1", "Deployment", "", admissionv1.Create, deployment(aw.signedTag), "", false)))
	allowed(t, postReview(t, url, review("cron", "batch", "v1", "CronJob", "", admissionv1.Update, cronJob("init:"+aw.signedTag), cronJob("x"), false)))

	type deniedCase struct {
		object string
		wants  []string
		kind   []string
	}
	for name, tc := range map[string]deniedCase{
		"unsigned": {pod(aw.signedTag, "init:"+aw.unsigned), []string{
			fmt.Sprintf("image %q (initContainer \"init1\"): no-signature (trust policy statement \"all\"): no signature is associated with", aw.unsigned)}, nil},
		"tampered": {pod(aw.tampered), []string{
			fmt.Sprintf("image %q (container \"c0\"): verification-failed (trust policy statement \"all\"): integrity check failed", aw.tampered)}, nil},
		"untrusted": {pod(aw.untrusted), []string{
			fmt.Sprintf("image %q (container \"c0\"): verification-failed (trust policy statement \"all\"): authenticity check failed", aw.untrusted)}, nil},
		"ephemeral unsigned": {pod(aw.signedTag, "debug:"+aw.unsigned), []string{
			fmt.Sprintf("image %q (ephemeralContainer \"debug1\"): no-signature", aw.unsigned)}, nil},
		"all at once": {deployment(aw.unsigned, aw.tampered, "init:"+aw.untrusted, aw.signedTag), []string{
			"keyward: 3 image(s) not verified: ", aw.unsigned, aw.tampered, aw.untrusted}, []string{"apps", "v1", "Deployment"}},
		"invalid image": {pod("Team/App:v1", "registry.example.com/UPPER:v1"), []string{
			`image "registry.example.com/UPPER:v1" (container "c1"): image "registry.example.com/UPPER:v1" has an upper-case repository`}, nil},
		"registry down": {pod(aw.failing.host + "/team/app:v1"), []string{
			fmt.Sprintf("image %q (container \"c0\"): resolve (trust policy statement \"all\")", aw.failing.host+"/team/app:v1")}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			kind := tc.kind
			if kind == nil {
				kind = []string{"", "v1", "Pod"}
			}
			denied(t, postReview(t, url, review(name, kind[0], kind[1], kind[2], "", admissionv1.Create, tc.object, "", false)), tc.wants...)
		})
	}

	// A skip statement: allowed, and the registry that fails every
	// request is never asked.
	before := aw.failing.requests.Load()
	r = postReview(t, url, review("skip", "", "v1", "Pod", "", admissionv1.Create, pod(aw.skipped, "init:"+aw.signedTag), "", true))
	allowed(t, r)
	if n := aw.failing.requests.Load() - before; n != 0 {
		t.Errorf("a skipped image cost %d registry requests", n)
	}

	// An audit statement: the untrusted signature passes with its
	// failure logged, which comes back as a warning.
	r = postReview(t, url, review("audit", "", "v1", "Pod", "", admissionv1.Create, pod(aw.audited), "", false))
	allowed(t, r)
	if want := fmt.Sprintf(`authenticity check failed for image %q (container "c0"), logged by audit statement "audited"`, aw.audited); len(r.Warnings) != 1 || r.Warnings[0] != want {
		t.Errorf("audit warnings %q", r.Warnings)
	}

	// An update is judged by the images it adds or changes: an unsigned
	// image it leaves as it was does not block it (nor cost a registry
	// request), one it brings in does.
	before = aw.failing.requests.Load()
	down := aw.failing.host + "/team/app:v1"
	allowed(t, postReview(t, url, review("upd-same", "", "v1", "Pod", "", admissionv1.Update, pod(aw.unsigned, down), pod(aw.unsigned, down), false)))
	if n := aw.failing.requests.Load() - before; n != 0 {
		t.Errorf("an update that changes no image cost %d registry requests", n)
	}
	denied(t, postReview(t, url, review("upd-new", "", "v1", "Pod", "", admissionv1.Update, pod(aw.signedTag, aw.unsigned), pod(aw.signedTag, aw.signedTag), false)),
		fmt.Sprintf("keyward: 1 image(s) not verified: image %q (container \"c1\")", aw.unsigned))

	// Not judged: allowed without a look at the object.
	allowed(t, postReview(t, url, review("cm", "", "v1", "ConfigMap", "", admissionv1.Create, `{"data": {}}`, "", false)))
	allowed(t, postReview(t, url, review("status", "", "v1", "Pod", "status", admissionv1.Update, pod(aw.unsigned), "", false)))
	allowed(t, postReview(t, url, review("del", "", "v1", "Pod", "", admissionv1.Delete, "", "", false)))

	// The audit log: one line per image per decision.
	lines := aw.logs.lines(t, "admission decision")
	find := func(uid, image string) map[string]any {
		for _, l := range lines {
			if l["uid"] == "uid-"+uid && l["image"] == image {
				return l
			}
		}
		t.Fatalf("no audit line for %s %s in %v", uid, image, lines)
		return nil
	}
	if l := find("skip", aw.skipped); l["verdict"] != "skipped" || l["dryRun"] != true || l["statement"] != "skip-failing" || l["kind"] != "Pod" || l["name"] != "web" || l["namespace"] != "team" {
		t.Errorf("skip line %v", l)
	}
	if l := find("ok", aw.signedTag); l["verdict"] != "allowed" || l["dryRun"] != false || l["digest"] != aw.signed[strings.LastIndex(aw.signed, "@")+1:] || l["container"] != "c0" {
		t.Errorf("signed line %v", l)
	}
	if l := find("audit", aw.audited); l["verdict"] != "warned" {
		t.Errorf("audit line %v", l)
	}
	if l := find("unsigned", aw.unsigned); l["verdict"] != "denied" || !strings.Contains(fmt.Sprint(l["reason"]), "no-signature") || l["containerKind"] != "initContainer" {
		t.Errorf("unsigned line %v", l)
	}
}

// TestMutatingWebhook checks the JSON Patch: each verified image without
// digest is pinned at its path to the digest verified, keeping the image
// as written; images with a digest and skipped images are not; applying
// the patch and sending the result again patches nothing; an unchanged
// image of an update is not pinned; an image that does not verify denies.
func TestMutatingWebhook(t *testing.T) {
	aw := newAdmissionWorld(t)
	base, _ := aw.server(t)
	url := base + MutatePath
	dgst := aw.signed[strings.LastIndex(aw.signed, "@")+1:]
	pinned := aw.signedTag + "@" + dgst

	object := pod(aw.signedTag, "init:"+aw.signed, aw.skipped, "debug:"+aw.signedTag)
	before := aw.failing.requests.Load()
	r := postReview(t, url, review("pod", "", "v1", "Pod", "", admissionv1.Create, object, "", false))
	allowed(t, r)
	if n := aw.failing.requests.Load() - before; n != 0 {
		t.Errorf("the skipped image cost %d registry requests", n)
	}
	if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v", r.PatchType)
	}
	var ops []admission.PatchOp
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	want := []admission.PatchOp{
		{Op: "replace", Path: "/spec/containers/0/image", Value: pinned},
		{Op: "replace", Path: "/spec/ephemeralContainers/0/image", Value: pinned},
	}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Errorf("patch %s, want %v", r.Patch, want)
	}
	mutated, err := jsonpatch.Apply([]byte(object), r.Patch)
	if err != nil {
		t.Fatal(err)
	}
	if want := pod(pinned, "init:"+aw.signed, aw.skipped, "debug:"+pinned); !sameJSON(mutated, []byte(want)) {
		t.Errorf("mutated %s\nwant    %s", mutated, want)
	}
	// Idempotent: the pinned object is not patched again.
	r = postReview(t, url, review("again", "", "v1", "Pod", "", admissionv1.Create, string(mutated), "", false))
	allowed(t, r)
	if r.Patch != nil || r.PatchType != nil {
		t.Errorf("second patch %s", r.Patch)
	}
	// The validating webhook admits the pinned object.
	allowed(t, postReview(t, base+ValidatePath, review("val", "", "v1", "Pod", "", admissionv1.Create, string(mutated), "", false)))

	// A Deployment, with its template's path; an update pins only what
	// it changes.
	dep := deployment(aw.signedTag, aw.signedTag)
	r = postReview(t, url, review("dep", "apps", "v1", "Deployment", "", admissionv1.Update, dep, deployment(aw.signedTag, "old:1"), false))
	allowed(t, r)
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ops) != fmt.Sprint([]admission.PatchOp{{Op: "replace", Path: "/spec/template/spec/containers/1/image", Value: pinned}}) {
		t.Errorf("update patch %s", r.Patch)
	}
	if _, err := jsonpatch.Apply([]byte(dep), r.Patch); err != nil {
		t.Error(err)
	}
	// The ephemeral containers subresource pins ephemeral containers only.
	r = postReview(t, url, review("eph", "", "v1", "Pod", "ephemeralcontainers", admissionv1.Update, pod(aw.signedTag, "debug:"+aw.signedTag), pod(aw.signedTag), false))
	allowed(t, r)
	if err := json.Unmarshal(r.Patch, &ops); err != nil || len(ops) != 1 || ops[0].Path != "/spec/ephemeralContainers/0/image" {
		t.Errorf("ephemeral containers patch %s", r.Patch)
	}

	// Nothing unverified is pinned: denied as the validating webhook
	// denies.
	bad := pod(aw.signedTag, aw.unsigned)
	m := postReview(t, url, review("bad", "", "v1", "Pod", "", admissionv1.Create, bad, "", false))
	denied(t, m, aw.unsigned, "no-signature")
	v := postReview(t, base+ValidatePath, review("bad", "", "v1", "Pod", "", admissionv1.Create, bad, "", false))
	if m.Result.Message != v.Result.Message {
		t.Errorf("mutating %q, validating %q", m.Result.Message, v.Result.Message)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// TestAdmissionDeadline checks that a verification slower than the
// timeout the apiserver sends is answered, in time, with a denial.
func TestAdmissionDeadline(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	proxy := startProxy(t, w.reg.Host)
	proxy.delay.Store(int64(2 * time.Second))
	s, err := New(w.config(proxy.host), Options{})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := serve(t, s)
	start := time.Now()
	r := postReview(t, base+ValidatePath+"?timeout=1s", review("slow", "", "v1", "Pod", "", admissionv1.Create, pod(onHost(signed, proxy.host)), "", false))
	if took := time.Since(start); took > time.Second {
		t.Errorf("answered after %v, past the apiserver's 1s", took)
	}
	denied(t, r, onHost(signed, proxy.host))
	r = postReview(t, base+MutatePath+"?timeout=500ms", review("slow", "", "v1", "Pod", "", admissionv1.Create, pod(onHost(signed, proxy.host)), "", false))
	denied(t, r)
}

// TestAdmissionRequests checks refused bodies and the switches of the
// configuration.
func TestAdmissionRequests(t *testing.T) {
	dir := t.TempDir()
	p := testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}`), 0o644)
	cfg := &Config{PlainHTTP: true, Policy: PolicySet{TrustPolicy: p, TrustStore: dir}}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	v1beta1 := strings.Replace(string(review("x", "", "v1", "Pod", "", admissionv1.Create, pod("nginx"), "", false)), "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", ValidatePath, v1beta1, 400, `not admission.k8s.io/v1 AdmissionReview: set admissionReviewVersions: [v1]`},
		{"POST", MutatePath, "garbage", 400, "not one AdmissionReview"},
		{"POST", ValidatePath, strings.Repeat(" ", admission.MaxReviewBody+1), 413, "larger than"},
		{"GET", ValidatePath, "", 405, ""},
		{"POST", ValidatePath, string(review("x", "", "v1", "Pod", "", admissionv1.Create, pod("nginx"), "", false)), 200, `"allowed":true`},
		{"POST", GatekeeperPath, `{"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": ["nginx"]}}`, 200, `"isSuccess":true`},
		{"POST", GatekeeperPath, `{"apiVersion": "v1", "kind": "ProviderRequest"}`, 400, `"systemError":"keyward: the body is apiVersion \"v1\"`},
		{"POST", GatekeeperPath, `{"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": [` + strings.Repeat(`"a",`, admission.MaxKeys) + `"a"]}}`, 400, "more than the 1000 allowed"},
		{"POST", GatekeeperPath, strings.Repeat(" ", admission.MaxProviderBody+1), 413, "larger than"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s %.40s: status %d %.300s; want %d %q", tc.method, tc.path, tc.body, rec.Code, rec.Body, tc.status, tc.want)
		}
	}
	// Switched off: not served.
	cfg.Webhooks = WebhooksConfig{DisableValidating: true}
	cfg.Gatekeeper = GatekeeperConfig{Disable: true}
	s, _ = New(cfg, Options{})
	h = s.Handler()
	for path, want := range map[string]int{ValidatePath: 404, GatekeeperPath: 404, MutatePath: 200} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(review("x", "", "v1", "Pod", "", admissionv1.Create, pod("nginx"), "", false))))
		if rec.Code != want {
			t.Errorf("%s switched: status %d, want %d", path, rec.Code, want)
		}
	}
}

// The Gatekeeper external-data types as upstream declares their JSON
// (github.com/open-policy-agent/frameworks constraint/pkg/externaldata,
// request.go: ProviderRequest{apiVersion, kind, request{keys}};
// response.go: ProviderResponse{apiVersion, kind, response{idempotent,
// items[{key, value, error}], systemError}}), pinned here so that every
// response of these tests is decoded strictly against them. The upstream
// types themselves are used by test/gatekeeper, a module of its own (the
// frameworks module would pull OPA and other Kubernetes versions into
// keyward's go.mod).
type upstreamProviderResponse struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
	Response   struct {
		Idempotent bool `json:"idempotent,omitempty"`
		Items      []struct {
			Key   string `json:"key,omitempty"`
			Value any    `json:"value,omitempty"`
			Error string `json:"error,omitempty"`
		} `json:"items,omitempty"`
		SystemError string `json:"systemError,omitempty"`
	} `json:"response,omitempty"`
}

// regoResponse is what Gatekeeper hands a constraint template
// (externaldata.NewRegoResponse): an item with an error goes to errors,
// any other to responses as [key, value].
type regoResponse struct {
	responses   [][2]any
	errors      [][2]any
	systemError string
}

func toRego(p *upstreamProviderResponse) regoResponse {
	r := regoResponse{systemError: p.Response.SystemError}
	for _, it := range p.Response.Items {
		if it.Error != "" {
			r.errors = append(r.errors, [2]any{it.Key, it.Error})
		} else {
			r.responses = append(r.responses, [2]any{it.Key, it.Value})
		}
	}
	return r
}

// ratifyDefaultViolations are the keys Ratify v1.4.0's default constraint
// template (library/default/template.yaml) finds in violation: a system
// error, any error, or a response whose isSuccess is false.
func ratifyDefaultViolations(r regoResponse) []string {
	var out []string
	if r.systemError != "" {
		out = append(out, "system error")
	}
	for _, e := range r.errors {
		out = append(out, e[0].(string))
	}
	for _, v := range r.responses {
		if m, _ := v[1].(map[string]any); m["isSuccess"] == false {
			out = append(out, v[0].(string))
		}
	}
	return out
}

// ratifyNotationViolations are the keys Ratify v1.4.0's notation-validation
// template (library/notation-validation/template.yml) finds in violation:
// a response without a notation verifier report whose isSuccess is true.
func ratifyNotationViolations(r regoResponse) []string {
	var out []string
	for _, v := range r.responses {
		m, _ := v[1].(map[string]any)
		reports, _ := m["verifierReports"].([]any)
		ok := false
		for _, rep := range reports {
			if rm, _ := rep.(map[string]any); rm["type"] == "notation" && rm["isSuccess"] == true {
				ok = true
			}
		}
		if !ok {
			out = append(out, v[0].(string))
		}
	}
	return out
}

func postProvider(t *testing.T, url, body string) (int, *upstreamProviderResponse) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.DisallowUnknownFields()
	var out upstreamProviderResponse
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("the answer does not decode into the upstream ProviderResponse: %v", err)
	}
	return resp.StatusCode, &out
}

// TestGatekeeperProvider checks the provider's answers: shapes as
// upstream declares them, one item per distinct key in order, a verdict
// object for every key (verified or not) that Ratify's constraint
// templates judge as keyward does, and refused requests as system errors.
func TestGatekeeperProvider(t *testing.T) {
	aw := newAdmissionWorld(t)
	base, _ := aw.server(t)
	url := base + GatekeeperPath
	keys := []string{aw.signedTag, "[team]" + aw.signed, aw.unsigned, aw.tampered, aw.untrusted, aw.skipped, aw.audited, "NOT/valid", "[open", aw.signedTag}
	body, _ := json.Marshal(map[string]any{"apiVersion": "externaldata.gatekeeper.sh/v1alpha1", "kind": "ProviderRequest", "request": map[string]any{"keys": keys}})
	before := aw.failing.requests.Load()
	status, resp := postProvider(t, url, string(body))
	if status != http.StatusOK || resp.APIVersion != "externaldata.gatekeeper.sh/v1alpha1" || resp.Kind != "ProviderResponse" || !resp.Response.Idempotent || resp.Response.SystemError != "" {
		t.Fatalf("status %d, response %+v", status, resp)
	}
	if n := aw.failing.requests.Load() - before; n != 0 {
		t.Errorf("the skipped image cost %d registry requests", n)
	}
	if len(resp.Response.Items) != len(keys)-1 {
		t.Fatalf("%d items for %d distinct keys", len(resp.Response.Items), len(keys)-1)
	}
	want := map[string]bool{keys[0]: true, keys[1]: true, aw.unsigned: false, aw.tampered: false, aw.untrusted: false, aw.skipped: true, aw.audited: true, "NOT/valid": false, "[open": false}
	for i, it := range resp.Response.Items {
		if it.Key != keys[i] || it.Error != "" {
			t.Errorf("item %d: key %q error %q", i, it.Key, it.Error)
		}
		v, _ := it.Value.(map[string]any)
		if v["isSuccess"] != want[it.Key] || v["verified"] != want[it.Key] || v["version"] != "1" || v["timestamp"] == "" {
			t.Errorf("%s: value %v", it.Key, it.Value)
		}
	}
	value := func(i int) map[string]any { return resp.Response.Items[i].Value.(map[string]any) }
	if a := value(0)["artifact"].(map[string]any); a["digest"] != aw.signed[strings.LastIndex(aw.signed, "@")+1:] || value(0)["tag"] != "v1" {
		t.Errorf("signed value %v", value(0))
	}
	reps := value(0)["verifierReports"].([]any)
	if rep := reps[0].(map[string]any); len(reps) != 1 || rep["isSuccess"] != true || rep["type"] != "notation" || rep["verifierName"] != "notation" ||
		rep["extensions"].(map[string]any)["Issuer"] == "" || rep["referenceDigest"] == "" {
		t.Errorf("signed reports %v", reps)
	}
	if e := value(3)["error"].(map[string]any); e["kind"] != "verification-failed" || !strings.Contains(value(3)["verifierReports"].([]any)[0].(map[string]any)["message"].(string), "integrity check failed") {
		t.Errorf("tampered value %v", value(3))
	}
	if e := value(8)["error"].(map[string]any); e["kind"] != "resolve" || !strings.Contains(e["message"].(string), "does not close") {
		t.Errorf("[open value %v", value(8))
	}

	// Each value is the result POST /v1/verify gives for the image.
	plain := []string{aw.signedTag, aw.signed, aw.unsigned, aw.tampered, aw.untrusted, aw.skipped, aw.audited}
	for i, want := range post(t, http.DefaultClient, base, plain...) {
		raw, _ := json.Marshal(resp.Response.Items[i].Value)
		var got verify.ReferenceResult
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		same(t, &got, want)
	}

	rego := toRego(resp)
	if got, want := ratifyDefaultViolations(rego), []string{aw.unsigned, aw.tampered, aw.untrusted, "NOT/valid", "[open"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Ratify's default template finds %q in violation, want %q", got, want)
	}
	if got, want := ratifyNotationViolations(rego), []string{aw.unsigned, aw.tampered, aw.untrusted, aw.skipped, "NOT/valid", "[open"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Ratify's notation-validation template finds %q in violation, want %q", got, want)
	}

	// v1beta1, as Gatekeeper sends it, is answered as v1beta1.
	status, resp = postProvider(t, url, `{"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest", "request": {"keys": []}}`)
	if status != http.StatusOK || resp.APIVersion != "externaldata.gatekeeper.sh/v1beta1" || len(resp.Response.Items) != 0 {
		t.Errorf("v1beta1: %d %+v", status, resp)
	}
	status, resp = postProvider(t, url, `{"kind": "ProviderRequest"}`)
	if status != http.StatusBadRequest || !strings.Contains(resp.Response.SystemError, "not externaldata.gatekeeper.sh/v1beta1") {
		t.Errorf("no apiVersion: %d %+v", status, resp)
	}
	if lines := aw.logs.lines(t, "gatekeeper decision"); len(lines) != len(keys)-1 {
		t.Errorf("%d gatekeeper audit lines", len(lines))
	}
}

// TestRegistryHostAliasDenied checks that an image cannot reach a registry
// under a weaker trust policy statement by writing its host in another
// case: Registry.Example.com/team/app pulls what registry.example.com/team/app
// names (host names are case-insensitive), but the trust policy's scopes
// match exactly, so it would fall under the "*" statement (here skip). It
// is denied, naming the fix; so is registry.example.com:443/team/app.
func TestRegistryHostAliasDenied(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "truststore")
	if err := os.MkdirAll(filepath.Join(store, "x509", "ca", "corp"), 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, filepath.Join(store, "x509", "ca", "corp"), "root.pem", testpki.CertsPEM(testpki.Root(t, "corp root").Cert), 0o644)
	policy, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{
		map[string]any{"name": "corp", "registryScopes": []string{"registry.example.com/team/app"}, "signatureVerification": map[string]string{"level": "strict"},
			"trustStores": []string{"ca:corp"}, "trustedIdentities": []string{"*"}},
		map[string]any{"name": "rest", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "skip"}},
	}})
	p := testpki.WriteFile(t, dir, "trustpolicy.json", policy, 0o644)
	s, err := New(&Config{PlainHTTP: true, Policy: PolicySet{TrustPolicy: p, TrustStore: store}, RequestTimeout: 5 * time.Second,
		RegistryRequestTimeout: time.Second, Cache: CacheConfig{TTL: time.Minute, FailureTTL: time.Minute, MaxEntries: 10}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	for _, img := range []string{"Registry.Example.com/team/app:v1", "REGISTRY.EXAMPLE.COM/team/app:v1"} {
		r := postReview(t, srv.URL+ValidatePath, review("case", "", "v1", "Pod", "", admissionv1.Create, pod(img), "", false))
		denied(t, r, img, "upper-case registry host")
		r = postReview(t, srv.URL+MutatePath, review("case", "", "v1", "Pod", "", admissionv1.Create, pod(img), "", false))
		denied(t, r, img, "upper-case registry host")
	}
	// So does HTTPS's default port, written out.
	img := "registry.example.com:443/team/app:v1"
	r := postReview(t, srv.URL+ValidatePath, review("port", "", "v1", "Pod", "", admissionv1.Create, pod(img), "", false))
	denied(t, r, img, "without :443")
	// The lower-case host selects its own statement (strict: no registry
	// answers here, so it is denied for that reason, not skipped).
	r = postReview(t, srv.URL+ValidatePath, review("lower", "", "v1", "Pod", "", admissionv1.Create, pod("registry.example.com/team/app:v1"), "", false))
	denied(t, r, `trust policy statement "corp"`)
}
