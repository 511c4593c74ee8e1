package servebench

import (
	"encoding/json"
	"testing"
)

// TestAdmissionReview checks the AdmissionReview the benchmark sends: an
// admission.k8s.io/v1 review of a pod creation whose one container runs the
// image, with the request's uid, as a kube-apiserver sends it.
func TestAdmissionReview(t *testing.T) {
	const img = "127.0.0.1:5000/bench/app0@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	uid := randomUID()
	var ar struct {
		APIVersion, Kind string
		Request          struct {
			UID       string
			Kind      struct{ Group, Version, Kind string }
			Resource  struct{ Group, Version, Resource string }
			Namespace string
			Operation string
			Object    struct {
				APIVersion, Kind string
				Metadata         struct{ Name, Namespace string }
				Spec             struct {
					Containers []struct{ Name, Image string }
				}
			}
		}
	}
	if err := json.Unmarshal(AdmissionReview(img, uid), &ar); err != nil {
		t.Fatal(err)
	}
	r := ar.Request
	if ar.APIVersion != "admission.k8s.io/v1" || ar.Kind != "AdmissionReview" || r.UID != uid ||
		r.Kind.Version != "v1" || r.Kind.Kind != "Pod" || r.Resource.Resource != "pods" || r.Operation != "CREATE" ||
		r.Namespace != "default" || r.Object.Kind != "Pod" || r.Object.Metadata.Namespace != "default" ||
		len(r.Object.Spec.Containers) != 1 || r.Object.Spec.Containers[0].Image != img {
		t.Errorf("AdmissionReview: %+v", ar)
	}
	if len(uid) != 36 || uid == randomUID() {
		t.Errorf("uid %q: want a fresh UUID-shaped string", uid)
	}
}
