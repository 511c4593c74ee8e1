package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/keyward/keyward/internal/testenv"
)

// object is one YAML document of a manifest file, as JSON, with its typed
// form.
type object struct {
	// source says where it came from: file and document index.
	source string
	// json is the document converted to JSON.
	json []byte
	// typed is a pointer to the k8s.io/api (or local, for CRDs) type.
	typed      any
	apiVersion string
	kind       string
	name       string
	ns         string
}

func (o *object) key() string {
	return fmt.Sprintf("%s %s/%s", o.kind, o.ns, o.name)
}

// Objects of custom resources keyward's manifests use. k8s.io/api has no
// types for them, so these mirror the fields of their upstream Go types
// that the manifests may use (cert-manager.io/v1 Issuer and Certificate;
// Gatekeeper's Provider, ConstraintTemplate and constraint); a field
// outside them fails the strict decode, as an unknown field of a core type
// does.

type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		IsCA        bool             `json:"isCA,omitempty"`
		CommonName  string           `json:"commonName,omitempty"`
		SecretName  string           `json:"secretName"`
		DNSNames    []string         `json:"dnsNames,omitempty"`
		Duration    *metav1.Duration `json:"duration,omitempty"`
		RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`
		Usages      []string         `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

type provider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		URL      string `json:"url"`
		Timeout  int    `json:"timeout"`
		CABundle string `json:"caBundle"`
	} `json:"spec"`
}

type constraintTemplate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		CRD struct {
			Spec struct {
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
			} `json:"spec"`
		} `json:"crd"`
		Targets []struct {
			Target string `json:"target"`
			Rego   string `json:"rego"`
		} `json:"targets"`
	} `json:"spec"`
}

type constraint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		EnforcementAction string `json:"enforcementAction"`
		Match             struct {
			Kinds []struct {
				APIGroups []string `json:"apiGroups"`
				Kinds     []string `json:"kinds"`
			} `json:"kinds"`
			ExcludedNamespaces []string `json:"excludedNamespaces"`
		} `json:"match"`
	} `json:"spec"`
}

// newTyped returns a pointer to the type of apiVersion + kind, or nil.
func newTyped(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "v1 Namespace":
		return &corev1.Namespace{}
	case "v1 ServiceAccount":
		return &corev1.ServiceAccount{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "v1 Secret":
		return &corev1.Secret{}
	case "v1 Service":
		return &corev1.Service{}
	case "apps/v1 Deployment":
		return &appsv1.Deployment{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "rbac.authorization.k8s.io/v1 ClusterRole":
		return &rbacv1.ClusterRole{}
	case "rbac.authorization.k8s.io/v1 ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}
	case "rbac.authorization.k8s.io/v1 Role":
		return &rbacv1.Role{}
	case "rbac.authorization.k8s.io/v1 RoleBinding":
		return &rbacv1.RoleBinding{}
	case "admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration":
		return &admissionregistrationv1.ValidatingWebhookConfiguration{}
	case "admissionregistration.k8s.io/v1 MutatingWebhookConfiguration":
		return &admissionregistrationv1.MutatingWebhookConfiguration{}
	case "networking.k8s.io/v1 NetworkPolicy":
		return &networkingv1.NetworkPolicy{}
	case "cert-manager.io/v1 Issuer":
		return &issuer{}
	case "cert-manager.io/v1 Certificate":
		return &certificate{}
	case "externaldata.gatekeeper.sh/v1beta1 Provider":
		return &provider{}
	case "templates.gatekeeper.sh/v1 ConstraintTemplate":
		return &constraintTemplate{}
	case "constraints.gatekeeper.sh/v1beta1 KeywardVerification":
		return &constraint{}
	}
	return nil
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// parseStream splits a YAML stream into documents and decodes each
// strictly: duplicate keys, unknown fields, wrong types and trailing data
// are errors. Documents holding only comments are skipped.
func parseStream(name string, data []byte) ([]*object, error) {
	var out []*object
	for i, doc := range docSeparator.Split(string(data), -1) {
		source := fmt.Sprintf("%s (document %d)", name, i+1)
		j, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		if string(j) == "null" {
			continue
		}
		var tm struct {
			metav1.TypeMeta `json:",inline"`
			Metadata        struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(j, &tm); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		typed := newTyped(tm.APIVersion, tm.Kind)
		if typed == nil {
			return nil, fmt.Errorf("%s: unexpected apiVersion %q kind %q", source, tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict(j, typed); err != nil {
			return nil, fmt.Errorf("%s: %s %s: %w", source, tm.Kind, tm.Metadata.Name, err)
		}
		if tm.Metadata.Name == "" {
			return nil, fmt.Errorf("%s: %s has no metadata.name", source, tm.Kind)
		}
		out = append(out, &object{source: source, json: j, typed: typed, apiVersion: tm.APIVersion, kind: tm.Kind, name: tm.Metadata.Name, ns: tm.Metadata.Namespace})
	}
	return out, nil
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func decodeStrict(j []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the object")
	}
	return nil
}

// loadDir parses every *.yaml file of dir (relative to the repository
// root), in name order, as kubectl apply -f does.
func loadDir(t *testing.T, dir string) []*object {
	t.Helper()
	root := testenv.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.yaml files in %s", dir)
	}
	sort.Strings(files)
	var out []*object
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := parseStream(filepath.Join(dir, filepath.Base(f)), data)
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		out = append(out, objs...)
	}
	seen := map[string]string{}
	for _, o := range out {
		if prev, ok := seen[o.key()]; ok {
			t.Fatalf("%s is defined twice: in %s and %s", o.key(), prev, o.source)
		}
		seen[o.key()] = o.source
	}
	return out
}

// set is the objects of one installation, by kind.
type set struct {
	objs []*object
}

func (s *set) all(kind string) []*object {
	var out []*object
	for _, o := range s.objs {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// one returns the only object of kind; problems get a message when there
// is not exactly one.
func one[T any](s *set, kind string, problems *[]string) *T {
	objs := s.all(kind)
	if len(objs) != 1 {
		*problems = append(*problems, fmt.Sprintf("want exactly one %s, have %d", kind, len(objs)))
		return nil
	}
	return objs[0].typed.(*T)
}

func find[T any](s *set, kind, ns, name string) *T {
	for _, o := range s.objs {
		if o.kind == kind && o.ns == ns && o.name == name {
			return o.typed.(*T)
		}
	}
	return nil
}

// clone deep-copies a set through JSON, so that a test can break a copy.
func (s *set) clone(t *testing.T) *set {
	t.Helper()
	c := &set{}
	for _, o := range s.objs {
		j, err := json.Marshal(o.typed)
		if err != nil {
			t.Fatal(err)
		}
		n := *o
		n.typed = newTyped(o.apiVersion, o.kind)
		if err := json.Unmarshal(j, n.typed); err != nil {
			t.Fatal(err)
		}
		c.objs = append(c.objs, &n)
	}
	return c
}

func joinProblems(ps []string) string { return "\n  " + strings.Join(ps, "\n  ") }
