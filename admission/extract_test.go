package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/internal/jsonpatch"
	"github.com/keyward/keyward/internal/jsonpos"
	"github.com/keyward/keyward/verify"
)

// podSpec is a pod spec with two init containers, two containers and an
// ephemeral container, and an image pull secret.
const podSpec = `{
  "imagePullSecrets": [{"name": "regcred"}],
  "initContainers": [{"name": "init-a", "image": "busybox"}, {"name": "init-b", "image": "registry.example.com/tools/migrate:v2"}],
  "containers": [{"name": "app", "image": "registry.example.com/team/app:v1", "resources": {"limits": {"cpu": "500m"}}},
                 {"name": "sidecar", "image": "localhost:5000/proxy@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}],
  "ephemeralContainers": [{"name": "debug", "image": "user/debug:1", "targetContainerName": "app"}]
}`

// objects holds a manifest of each kind judged, with podSpec where the
// kind keeps its pod spec, and that location.
func objects() map[[3]string]struct{ object, base string } {
	template := `{"metadata": {"labels": {"app": "x"}}, "spec": ` + podSpec + `}`
	return map[[3]string]struct{ object, base string }{
		{"", "v1", "Pod"}:                   {`{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team"}, "spec": ` + podSpec + `}`, "/spec"},
		{"", "v1", "ReplicationController"}: {`{"metadata": {"name": "web"}, "spec": {"replicas": 1, "template": ` + template + `}}`, "/spec/template/spec"},
		{"apps", "v1", "Deployment"}:        {`{"metadata": {"name": "web"}, "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}}, "template": ` + template + `}}`, "/spec/template/spec"},
		{"apps", "v1", "StatefulSet"}:       {`{"metadata": {"name": "web"}, "spec": {"serviceName": "web", "template": ` + template + `}}`, "/spec/template/spec"},
		{"apps", "v1", "DaemonSet"}:         {`{"metadata": {"name": "web"}, "spec": {"template": ` + template + `}}`, "/spec/template/spec"},
		{"apps", "v1", "ReplicaSet"}:        {`{"metadata": {"name": "web"}, "spec": {"template": ` + template + `}}`, "/spec/template/spec"},
		{"batch", "v1", "Job"}:              {`{"metadata": {"name": "web"}, "spec": {"backoffLimit": 1, "template": ` + template + `}}`, "/spec/template/spec"},
		{"batch", "v1", "CronJob"}:          {`{"metadata": {"name": "web"}, "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": ` + template + `}}}}`, "/spec/jobTemplate/spec/template/spec"},
	}
}

func request(group, version, kind, object string) *admissionv1.AdmissionRequest {
	return &admissionv1.AdmissionRequest{
		UID:       "0b4a7f6e-1",
		Kind:      metav1.GroupVersionKind{Group: group, Version: version, Kind: kind},
		Namespace: "team",
		Operation: admissionv1.Create,
		Object:    runtime.RawExtension{Raw: []byte(object)},
	}
}

// TestExtract checks, for every kind, every container list: the images,
// their containers and kinds, and that each path points at the image in
// the object as sent.
func TestExtract(t *testing.T) {
	want := []Image{
		{"busybox", "init-a", KindInitContainer, "/initContainers/0/image"},
		{"registry.example.com/tools/migrate:v2", "init-b", KindInitContainer, "/initContainers/1/image"},
		{"registry.example.com/team/app:v1", "app", KindContainer, "/containers/0/image"},
		{"localhost:5000/proxy@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "sidecar", KindContainer, "/containers/1/image"},
		{"user/debug:1", "debug", KindEphemeralContainer, "/ephemeralContainers/0/image"},
	}
	for gvk, o := range objects() {
		t.Run(gvk[2], func(t *testing.T) {
			req := request(gvk[0], gvk[1], gvk[2], o.object)
			if !Judged(req) {
				t.Fatal("not judged")
			}
			w, err := Extract(req)
			if err != nil {
				t.Fatal(err)
			}
			if w.Kind != gvk[2] || w.Name != "web" || w.Namespace != "team" || fmt.Sprint(w.PullSecrets) != "[regcred]" {
				t.Errorf("workload %+v", w)
			}
			if len(w.Images) != len(want) {
				t.Fatalf("images %+v", w.Images)
			}
			root, err := jsonpos.Parse([]byte(o.object))
			if err != nil {
				t.Fatal(err)
			}
			for i, img := range w.Images {
				wi := want[i]
				wi.Path = o.base + wi.Path
				if img != wi {
					t.Errorf("image %d = %+v, want %+v", i, img, wi)
				}
				if n := jsonpos.Lookup(root, img.Path); n == nil || n.Str != img.Image {
					t.Errorf("%s does not point at %q in the object", img.Path, img.Image)
				}
			}
		})
	}
}

// TestJudged checks which requests are verified: kinds of any version of
// their group, CREATE and UPDATE, pods/ephemeralcontainers, and no other
// subresource.
func TestJudged(t *testing.T) {
	pod := objects()[[3]string{"", "v1", "Pod"}].object
	for _, tc := range []struct {
		group, version, kind, sub string
		op                        admissionv1.Operation
		want                      bool
	}{
		{"", "v1", "Pod", "", admissionv1.Create, true},
		{"", "v1", "Pod", "", admissionv1.Update, true},
		{"", "v1", "Pod", "ephemeralcontainers", admissionv1.Update, true},
		{"", "v1", "Pod", "status", admissionv1.Update, false},
		{"", "v1", "Pod", "", admissionv1.Delete, false},
		{"", "v1", "Pod", "exec", admissionv1.Connect, false},
		{"batch", "v1beta1", "CronJob", "", admissionv1.Create, true},
		{"apps", "v1", "Deployment", "scale", admissionv1.Update, false},
		{"", "v1", "ConfigMap", "", admissionv1.Create, false},
		{"apps", "v1", "Pod", "", admissionv1.Create, false},
		{"example.com", "v1", "Deployment", "", admissionv1.Create, false},
	} {
		req := request(tc.group, tc.version, tc.kind, pod)
		req.SubResource, req.Operation = tc.sub, tc.op
		if got := Judged(req); got != tc.want {
			t.Errorf("%s/%s %s %s %s: judged %v, want %v", tc.group, tc.version, tc.kind, tc.sub, tc.op, got, tc.want)
		}
	}
}

func TestExtractEdges(t *testing.T) {
	// A name generated later, the namespace from the object.
	req := request("", "v1", "Pod", `{"metadata": {"generateName": "web-", "namespace": "ns2"}, "spec": {"containers": [{"name": "a", "image": "x"}]}}`)
	req.Namespace = ""
	w, err := Extract(req)
	if err != nil || w.Name != "web-*" || w.Namespace != "ns2" || len(w.Images) != 1 {
		t.Errorf("generateName: %+v, %v", w, err)
	}
	// No template: nothing to verify.
	w, err = Extract(request("", "v1", "ReplicationController", `{"metadata": {"name": "rc"}, "spec": {"replicas": 0}}`))
	if err != nil || len(w.Images) != 0 {
		t.Errorf("no template: %+v, %v", w, err)
	}
	w, err = Extract(request("batch", "v1", "CronJob", `{"metadata": {"name": "c"}, "spec": {"jobTemplate": null}}`))
	if err != nil || len(w.Images) != 0 {
		t.Errorf("null jobTemplate: %+v, %v", w, err)
	}
	// Field names are case-sensitive, as kube-apiserver reads them: a
	// path extracted is where the image is.
	w, err = Extract(request("", "v1", "Pod", `{"spec": {"Containers": [{"name": "a", "image": "x"}], "containers": [{"name": "b", "Image": "y"}, {"name": "c", "image": "z"}]}}`))
	if err != nil || len(w.Images) != 2 || w.Images[0].Image != "" || w.Images[1] != (Image{"z", "c", KindContainer, "/spec/containers/1/image"}) {
		t.Errorf("case: %+v, %v", w, err)
	}
	many := `{"spec": {"containers": [` + strings.Repeat(`{"name": "a", "image": "x"},`, MaxImages) + `{"name": "b", "image": "y"}]}}`
	for object, want := range map[string]string{
		``:                                   "has no object",
		`[1]`:                                "does not have the shape of a Pod (a pod spec at /spec): json: cannot unmarshal array into Go value of type admission.object",
		`{"spec": [1]}`:                      "does not have the shape of a Pod",
		`{"spec": {"containers": {"a": 1}}}`: "does not have the shape of a Pod",
		// The fields read keep their JSON types.
		`{"spec": {"containers": [{"name": "a", "image": 5}]}}`:         "does not have the shape of a Pod",
		`{"spec": {"initContainers": [{"name": ["a"], "image": "x"}]}}`: "does not have the shape of a Pod",
		`{"spec": {"imagePullSecrets": [{"name": 1}]}}`:                 "does not have the shape of a Pod",
		many: "more than the 1000",
	} {
		if _, err := Extract(request("", "v1", "Pod", object)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.40s: %v, want %q", object, err, want)
		}
	}
	if _, err := Extract(request("apps", "v1", "Deployment", `{"spec": "x"}`)); err == nil || !strings.Contains(err.Error(), "the Deployment object does not have the shape of a Deployment (a pod spec at /spec/template/spec)") {
		t.Errorf("string spec: %v", err)
	}
}

func TestDecodeReview(t *testing.T) {
	ok := `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE", "object": {"spec": {}}}}`
	r, err := DecodeReview([]byte(ok))
	if err != nil || r.Request.UID != "u1" || string(r.Request.Object.Raw) != `{"spec": {}}` {
		t.Fatalf("%+v, %v", r, err)
	}
	out := answer(r)
	if out.APIVersion != ReviewAPIVersion || out.Kind != ReviewKind || out.Response.UID != "u1" {
		t.Errorf("answer %+v", out)
	}
	for body, want := range map[string]string{
		``:        "not one AdmissionReview",
		`garbage`: "not one AdmissionReview",
		`{} {}`:   "after top-level value",
		`[]`:      "not one AdmissionReview",
		strings.Replace(ok, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1):                 `apiVersion "admission.k8s.io/v1beta1" kind "AdmissionReview", not admission.k8s.io/v1 AdmissionReview: set admissionReviewVersions: [v1]`,
		strings.Replace(ok, `"AdmissionReview"`, `"Pod"`, 1):                                      `kind "Pod"`,
		`{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}`:                        "has no request",
		strings.Replace(ok, `"uid": "u1", `, "", 1):                                               "has no uid",
		`{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 5}}`: "not one AdmissionReview",
		// The fields read keep their JSON types.
		strings.Replace(ok, `"kind": {"group": "", "version": "v1", "kind": "Pod"}`, `"kind": "Pod"`, 1): "not one AdmissionReview",
		strings.Replace(ok, `"operation": "CREATE"`, `"operation": 1`, 1):                                "not one AdmissionReview",
		strings.Replace(ok, `"operation": "CREATE"`, `"operation": "CREATE", "dryRun": "no"`, 1):         "not one AdmissionReview",
		strings.Replace(ok, `"operation": "CREATE"`, `"operation": "CREATE", "namespace": ["a"]`, 1):     "not one AdmissionReview",
	} {
		_, err := DecodeReview([]byte(body))
		var re *ReviewError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), want) {
			t.Errorf("%.50s: %v, want a *ReviewError containing %q", body, err, want)
		}
	}
}

func TestBudget(t *testing.T) {
	for _, tc := range []struct {
		query string
		limit time.Duration
		want  time.Duration
	}{
		{"10s", 8 * time.Second, 8 * time.Second},
		{"5s", 8 * time.Second, 4500 * time.Millisecond},
		{"1s", 8 * time.Second, 900 * time.Millisecond},
		{"30s", 29 * time.Second, 29 * time.Second},
		{"20s", 29 * time.Second, 19 * time.Second},
		{"", 8 * time.Second, 8 * time.Second},
		{"ten", 8 * time.Second, 8 * time.Second},
		{"-1s", 8 * time.Second, 8 * time.Second},
		{"80ms", 8 * time.Second, 40 * time.Millisecond},
	} {
		if got := budget(tc.query, tc.limit); got != tc.want {
			t.Errorf("budget(%q, %v) = %v, want %v", tc.query, tc.limit, got, tc.want)
		}
	}
}

func TestBounds(t *testing.T) {
	long := strings.Repeat("é", 1000)
	ws := warningList([]string{long, "a\nb\x7f", "a\nb\x7f"})
	if len(ws) != 2 || len([]rune(ws[0])) != maxWarningRunes || !strings.HasSuffix(ws[0], "…") || ws[1] != "a b " {
		t.Errorf("warnings %q", ws)
	}
	var many []string
	for i := range 50 {
		many = append(many, fmt.Sprintf("warning %d", i))
	}
	if ws := warningList(many); len(ws) != maxWarnings || !strings.Contains(ws[maxWarnings-1], "more warnings") {
		t.Errorf("%d warnings: %q", len(ws), ws)
	}
	var problems []string
	for i := range 20 {
		problems = append(problems, fmt.Sprintf("image %d: %s", i, long))
	}
	msg := denial(problems)
	if n := len([]rune(msg)); n > maxMessageRunes || !strings.HasSuffix(msg, "; and 12 more") || !strings.HasPrefix(msg, "keyward: 20 image(s) not verified: image 0: ") || !strings.Contains(msg, "image 7:") {
		t.Errorf("denial of %d runes: %.200q", n, msg)
	}
	if msg := denial(problems[:9]); !strings.Contains(msg, "; and 1 more") {
		t.Errorf("9 problems: %q", msg[len(msg)-40:])
	}
}

// FuzzReview checks that no body makes the decoder or the extractor
// panic, and that every path extracted points at its image.
func FuzzReview(f *testing.F) {
	for gvk, o := range objects() {
		review, _ := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: ReviewAPIVersion, Kind: ReviewKind},
			Request:  request(gvk[0], gvk[1], gvk[2], o.object),
		})
		f.Add(review)
	}
	f.Add([]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":[{"image":"a~/b"}]}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		review, err := DecodeReview(body)
		if err != nil || !Judged(review.Request) {
			return
		}
		w, err := Extract(review.Request)
		if err != nil {
			return
		}
		root, err := jsonpos.Parse(review.Request.Object.Raw)
		if err != nil {
			return // encoding/json and jsonpos differ on what they accept (e.g. invalid UTF-8)
		}
		for _, img := range w.Images {
			if n := jsonpos.Lookup(root, img.Path); (n == nil || n.Str != img.Image) && img.Image != "" {
				t.Fatalf("%s does not point at %q", img.Path, img.Image)
			}
		}
		// The webhooks answer the request's uid, and a patch applies to
		// the object as sent.
		h := &Webhook{Verifier: pinAll{}}
		v := h.Validate(context.Background(), review)
		m := h.Mutate(context.Background(), review)
		if v.Response.UID != review.Request.UID || m.Response.UID != review.Request.UID || v.Response.Allowed != m.Response.Allowed {
			t.Fatalf("validate %+v, mutate %+v", v.Response, m.Response)
		}
		if m.Response.Patch != nil {
			if _, err := jsonpatch.Apply(review.Request.Object.Raw, m.Response.Patch); err != nil {
				t.Fatalf("the patch %s does not apply: %v", m.Response.Patch, err)
			}
		}
	})
}

// pinAll verifies every image, resolved to a digest of its reference.
type pinAll struct{}

func (pinAll) VerifyImage(_ context.Context, r ImageRequest) *verify.ReferenceResult {
	d := digest.FromString(r.Reference)
	return &verify.ReferenceResult{Reference: r.Reference, Verified: true, Artifact: &ocispec.Descriptor{Digest: d}}
}

// BenchmarkValidate measures what the validating webhook adds to a
// verdict already known: decoding the review of a Deployment with three
// containers, extracting, judging and answering.
func BenchmarkValidate(b *testing.B) {
	o := objects()[[3]string{"apps", "v1", "Deployment"}]
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: ReviewAPIVersion, Kind: ReviewKind},
		Request:  request("apps", "v1", "Deployment", o.object),
	})
	h := &Webhook{Verifier: pinAll{}}
	b.ReportAllocs()
	for b.Loop() {
		review, err := DecodeReview(body)
		if err != nil {
			b.Fatal(err)
		}
		out := h.Validate(context.Background(), review)
		if !out.Response.Allowed {
			b.Fatal(out.Response.Result)
		}
		if _, err := json.Marshal(out); err != nil {
			b.Fatal(err)
		}
	}
}
