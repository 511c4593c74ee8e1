package admission

import (
	"fmt"
	"strconv"

	admissionv1 "k8s.io/api/admission/v1"
	kjson "sigs.k8s.io/json"

	"github.com/keyward/keyward/internal/jsonpos"
)

// ContainerKind says which list of a pod spec a container is in.
type ContainerKind string

// The container kinds.
const (
	KindContainer          ContainerKind = "container"
	KindInitContainer      ContainerKind = "initContainer"
	KindEphemeralContainer ContainerKind = "ephemeralContainer"
)

// MaxImages bounds the containers of one object.
const MaxImages = 1000

// Image is one container's image in an admitted object.
type Image struct {
	// Image is the image as the spec writes it.
	Image string
	// Container is the container's name; Kind its list.
	Container string
	Kind      ContainerKind
	// Path is the JSON pointer (RFC 6901) of the image field in the
	// object, where a JSON Patch replaces it.
	Path string
}

// Workload is what keyward judges in an admission request: the object's
// identity and its images.
type Workload struct {
	// Kind is the object's kind (Pod, Deployment, ...); Name its name
	// (metadata.generateName followed by * before one is generated);
	// Namespace its namespace.
	Kind, Name, Namespace string
	// Images are the images of every container, init container and
	// ephemeral container, in spec order.
	Images []Image
	// PullSecrets are the names of the pod spec's imagePullSecrets.
	PullSecrets []string
}

type groupKind struct{ group, kind string }

// The objects on the way to a pod spec, with only the fields on the way.
type (
	// object is an admitted object: its identity and its spec.
	object struct {
		Metadata struct {
			Name         string `json:"name"`
			GenerateName string `json:"generateName"`
			Namespace    string `json:"namespace"`
		} `json:"metadata"`
		Spec any `json:"spec"`
	}
	// templateSpec is the spec of a Deployment, StatefulSet, DaemonSet,
	// ReplicaSet, ReplicationController or Job: its pod template.
	templateSpec struct {
		Template *struct {
			Spec *podImages `json:"spec"`
		} `json:"template"`
	}
	// cronJobSpec is the spec of a CronJob: its job template.
	cronJobSpec struct {
		JobTemplate *struct {
			Spec *templateSpec `json:"spec"`
		} `json:"jobTemplate"`
	}
	// podImages is what keyward reads of a pod spec (k8s.io/api core/v1
	// PodSpec, under the same JSON names): the name and image of every
	// container of the three lists, and the names of the image pull
	// secrets. The decoder skips the other fields (resources, probes,
	// volumes, ...) without building them: they say nothing about what
	// runs, and decoding them into corev1.PodSpec was most of the time
	// of a warm admission request. A list or field read that has another
	// JSON type is still an error.
	podImages struct {
		InitContainers      []container            `json:"initContainers"`
		Containers          []container            `json:"containers"`
		EphemeralContainers []container            `json:"ephemeralContainers"`
		ImagePullSecrets    []localObjectReference `json:"imagePullSecrets"`
	}
	// container is a container's name and image (core/v1 Container,
	// EphemeralContainer).
	container struct {
		Name  string `json:"name"`
		Image string `json:"image"`
	}
	// localObjectReference is core/v1 LocalObjectReference.
	localObjectReference struct {
		Name string `json:"name"`
	}
)

// podSpecOf returns the pod spec in spec, the decoded spec of an object
// (nil when a level on the way is absent or null).
func podSpecOf(spec any) *podImages {
	switch s := spec.(type) {
	case *podImages:
		return s
	case *templateSpec:
		if s != nil && s.Template != nil {
			return s.Template.Spec
		}
	case *cronJobSpec:
		if s != nil && s.JobTemplate != nil && s.JobTemplate.Spec != nil {
			return podSpecOf(s.JobTemplate.Spec)
		}
	}
	return nil
}

// specPaths locates the pod spec of each kind judged, whatever the
// version: apps/v1, batch/v1 and core/v1 are what kube-apiserver v1.31
// serves, and the older versions of these kinds had the same layout.
var specPaths = map[groupKind][]string{
	{"", "Pod"}:                   {"spec"},
	{"", "ReplicationController"}: {"spec", "template", "spec"},
	{"apps", "Deployment"}:        {"spec", "template", "spec"},
	{"apps", "StatefulSet"}:       {"spec", "template", "spec"},
	{"apps", "DaemonSet"}:         {"spec", "template", "spec"},
	{"apps", "ReplicaSet"}:        {"spec", "template", "spec"},
	{"batch", "Job"}:              {"spec", "template", "spec"},
	{"batch", "CronJob"}:          {"spec", "jobTemplate", "spec", "template", "spec"},
}

// Judged reports whether keyward verifies the images of req: a CREATE or
// UPDATE of a kind it knows, without a subresource but for
// pods/ephemeralcontainers.
func Judged(req *admissionv1.AdmissionRequest) bool {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return false
	}
	gk := groupKind{req.Kind.Group, req.Kind.Kind}
	if _, ok := specPaths[gk]; !ok {
		return false
	}
	switch req.SubResource {
	case "":
		return true
	case "ephemeralcontainers":
		return gk == groupKind{"", "Pod"}
	}
	return false
}

// Extract returns the workload of a request keyward judges ([Judged]):
// every image of req.Object with its container and JSON pointer. An object
// whose pod spec cannot be read is an error (the request is denied).
func Extract(req *admissionv1.AdmissionRequest) (*Workload, error) {
	return extract(req, req.Object.Raw)
}

// extract reads the workload of data, req's object or old object.
func extract(req *admissionv1.AdmissionRequest, data []byte) (*Workload, error) {
	path, ok := specPaths[groupKind{req.Kind.Group, req.Kind.Kind}]
	if !ok {
		return nil, fmt.Errorf("kind %s/%s is not one keyward judges", req.Kind.Group, req.Kind.Kind)
	}
	w := &Workload{Kind: req.Kind.Kind, Name: req.Name, Namespace: req.Namespace}
	if len(data) == 0 {
		return nil, fmt.Errorf("the request has no object")
	}
	// One pass over the object, into the fields on the way to the pod
	// spec. Field names are case-sensitive, as kube-apiserver reads them
	// (sigs.k8s.io/json), so that a path extracted is where the JSON
	// Patch finds the image.
	var o object
	// The decoder fills the value the interface points to.
	switch len(path) {
	case 1:
		o.Spec = &podImages{}
	case 3:
		o.Spec = &templateSpec{}
	default:
		o.Spec = &cronJobSpec{}
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(data, &o); err != nil {
		return nil, fmt.Errorf("the %s object does not have the shape of a %s (a pod spec at %s): %w", w.Kind, w.Kind, jsonpos.Join("", path...), err)
	}
	if w.Name == "" {
		w.Name = o.Metadata.Name
	}
	if w.Name == "" && o.Metadata.GenerateName != "" {
		w.Name = o.Metadata.GenerateName + "*"
	}
	if w.Namespace == "" {
		w.Namespace = o.Metadata.Namespace
	}
	spec := podSpecOf(o.Spec)
	if spec == nil {
		return w, nil // no pod spec, no image (e.g. a ReplicationController without template)
	}
	if n := len(spec.Containers) + len(spec.InitContainers) + len(spec.EphemeralContainers); n > MaxImages {
		return nil, fmt.Errorf("the %s has %d containers, more than the %d keyward verifies in one object", w.Kind, n, MaxImages)
	}
	base := jsonpos.Join("", path...)
	add := func(list string, kind ContainerKind, i int, name, image string) {
		w.Images = append(w.Images, Image{Image: image, Container: name, Kind: kind, Path: jsonpos.Join(base, list, strconv.Itoa(i), "image")})
	}
	for i, c := range spec.InitContainers {
		add("initContainers", KindInitContainer, i, c.Name, c.Image)
	}
	for i, c := range spec.Containers {
		add("containers", KindContainer, i, c.Name, c.Image)
	}
	for i, c := range spec.EphemeralContainers {
		add("ephemeralContainers", KindEphemeralContainer, i, c.Name, c.Image)
	}
	for _, s := range spec.ImagePullSecrets {
		if s.Name != "" {
			w.PullSecrets = append(w.PullSecrets, s.Name)
		}
	}
	return w, nil
}
