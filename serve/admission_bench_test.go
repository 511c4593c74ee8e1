//go:build unix

package serve

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
)

// apiserverPod is a Pod as kube-apiserver v1.31 sends it to a validating
// webhook on CREATE by a ReplicaSet controller: defaulted fields, owner
// references and managedFields included. %s is the image.
const apiserverPod = `{"kind":"Pod","apiVersion":"v1","metadata":{"generateName":"web-7d4b9c8f6d-","namespace":"default","uid":"4b1e0c3a-1f5e-4a49-9d0e-8a6f1e2c3b4d","creationTimestamp":"2026-12-06T05:00:00Z","labels":{"app":"web","pod-template-hash":"7d4b9c8f6d"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"web-7d4b9c8f6d","uid":"9c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f","controller":true,"blockOwnerDeletion":true}],"managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-12-06T05:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"9c1d2e3f-4a5b-6c7d-8e9f-0a1b2c3d4e5f\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:env":{".":{},"k:{\"name\":\"MODE\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{".":{},"f:limits":{".":{},"f:cpu":{},"f:memory":{}},"f:requests":{".":{},"f:cpu":{},"f:memory":{}}},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}]},"spec":{"volumes":[{"name":"kube-api-access-abcde","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}],"defaultMode":420}}],"containers":[{"name":"app","image":"%s","ports":[{"containerPort":8080,"protocol":"TCP"}],"env":[{"name":"MODE","value":"production"}],"resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"volumeMounts":[{"name":"kube-api-access-abcde","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default","serviceAccount":"default","securityContext":{},"schedulerName":"default-scheduler","tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},"status":{}}`

// apiserverReview wraps object as kube-apiserver's AdmissionReview of a
// Pod CREATE.
func apiserverReview(uid, object string) []byte {
	return fmt.Appendf(nil, `{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":%q,"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"requestKind":{"group":"","version":"v1","kind":"Pod"},"requestResource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE","userInfo":{"username":"system:serviceaccount:kube-system:replicaset-controller","uid":"0d3c9a1e-2b4f-4c6d-8e0f-1a2b3c4d5e6f","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"]},"object":%s,"oldObject":null,"dryRun":false,"options":{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}}}`, uid, object)
}

// BenchmarkAdmissionWarm is one POST /v1/admission/validate of a Pod whose
// one image (by digest) has a cached verdict, through the server's whole
// handler (Server-Timing, metrics, JSON audit log into a file), in
// process, one request at a time and 64 at once: what keyward serve's warm server-side latency is made of.
// minimal is the Pod the serve benchmark sends; apiserver is one as
// kube-apiserver sends it.
func BenchmarkAdmissionWarm(b *testing.B) {
	w := newWorldOn(b, testenv.StartOlareg(b))
	ref, _ := testenv.PushArtifact(b, w.reg, "bench/app")
	w.n.MustRun(b, "sign", "--plugin", "keyward", "--id", w.keyID, "--plugin-config", "cert_chain="+w.chain, "--insecure-registry", "--force-referrers-tag=false", ref)
	// The log goes to a file, as keyward serve's stderr does under a
	// container runtime or testenv.
	logFile, err := os.Create(filepath.Join(b.TempDir(), "serve.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	s, err := New(w.config(w.reg.Host), Options{Logger: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	for _, c := range []struct{ name, object string }{
		{"minimal", fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench-1","namespace":"default"},"spec":{"containers":[{"name":"app","image":%q}]}}`, ref)},
		{"apiserver", strings.Replace(apiserverPod, "%s", ref, 1)},
	} {
		body := apiserverReview("705ab4f5-6393-11e8-b7cc-42010a800002", c.object)
		ask := func() *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(body)))
			return rec
		}
		if rec := ask(); rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("%s: status %d: %s", c.name, rec.Code, rec.Body)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if rec := ask(); rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
		// 64 requests at once on GOMAXPROCS cores, as the serve
		// benchmark's concurrency 64: the p99 of one request's time.
		b.Run(c.name+"-c64", func(b *testing.B) {
			b.ReportAllocs()
			var mu sync.Mutex
			var times []time.Duration
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			cpu := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					start := time.Now()
					if rec := ask(); rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, rec.Body)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				times = append(times, mine...)
				mu.Unlock()
			})
			b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
			slices.Sort(times)
			if len(times) > 0 {
				b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-us")
			}
		})
	}
}

// cpuTime is the CPU time the process has used, user and system: on a
// shared machine it varies less than the time a request takes.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// coldImages is how many images BenchmarkAdmissionCold signs: run it with
// -test.benchtime at most that many times (100x).
const coldImages = 100

// BenchmarkAdmissionCold is POST /v1/admission/validate of a Pod whose one
// image is new to the server (no verdict, no signature cached; the
// connections, the registry's referrers capability and the chain of the
// signer are known after the first), each image once: where a cold
// admission's time goes besides the 4 registry requests.
func BenchmarkAdmissionCold(b *testing.B) {
	w := newWorldOn(b, testenv.StartOlareg(b))
	refs := make([]string, coldImages)
	for i := range refs {
		refs[i], _ = testenv.PushArtifact(b, w.reg, fmt.Sprintf("bench/app%d", i%10))
		w.n.MustRun(b, "sign", "--plugin", "keyward", "--id", w.keyID, "--plugin-config", "cert_chain="+w.chain, "--insecure-registry", "--force-referrers-tag=false", refs[i])
	}
	logFile, err := os.Create(filepath.Join(b.TempDir(), "serve.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	s, err := New(w.config(w.reg.Host), Options{Logger: slog.New(slog.NewJSONHandler(logFile, nil))})
	if err != nil {
		b.Fatal(err)
	}
	h := s.Handler()
	b.ReportAllocs()
	cpu := cpuTime()
	i := 0
	for b.Loop() {
		if i == len(refs) {
			b.Fatalf("only %d images: run with -test.benchtime %dx", len(refs), len(refs))
		}
		object := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench-1","namespace":"default"},"spec":{"containers":[{"name":"app","image":%q}]}}`, refs[i])
		i++
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, ValidatePath, bytes.NewReader(apiserverReview("705ab4f5-6393-11e8-b7cc-42010a800002", object))))
		if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(cpuTime()-cpu)/float64(b.N), "cpu-ns/op")
}
