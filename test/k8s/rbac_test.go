package k8s

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testenv/k8senv"
)

// rbacManifest is the shipped RBAC of keyward serve (rendered from the
// chart's default values).
const rbacManifest = "11-rbac.yaml"

// The service account the shipped bindings name (10-serviceaccount.yaml).
const (
	shippedSANamespace = "keyward"
	shippedSAName      = "keyward"
)

// applyShippedRBAC creates, for real, the RBAC objects of
// deploy/manifests/11-rbac.yaml for id instead of the shipped service
// account keyward/keyward: the ClusterRole and ClusterRoleBinding as they
// are (renamed with a random suffix, so that tests sharing the control
// plane do not meet, and deleted when the test ends), and the Role and
// RoleBinding, which the chart renders once per namespace of
// rbac.pullSecretNamespaces, in each of secretNamespaces instead of the
// rendered one. Rules, verbs and role references are the file's: what id
// may do is what the shipped manifests give keyward serve. Any other kind
// of object in the file, or a binding to another subject, fails the test,
// which would then no longer know what it proves.
func applyShippedRBAC(t *testing.T, cp *k8senv.ControlPlane, id *k8senv.Identity, secretNamespaces ...string) {
	t.Helper()
	file := filepath.Join(testenv.RepoRoot(t), manifestsDir, rbacManifest)
	objs := decodeManifests(t, file)
	b := make([]byte, 4)
	rand.Read(b)
	suffix := "-" + hex.EncodeToString(b)
	subject := func(what string, subjects []rbacv1.Subject) []rbacv1.Subject {
		t.Helper()
		if len(subjects) != 1 || subjects[0].Kind != rbacv1.ServiceAccountKind ||
			subjects[0].Namespace != shippedSANamespace || subjects[0].Name != shippedSAName {
			t.Fatalf("%s binds %v; this test knows only the service account %s/%s", what, subjects, shippedSANamespace, shippedSAName)
		}
		return []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: id.Namespace, Name: id.Name}}
	}
	ctx := context.Background()
	api := cp.Clientset.RbacV1()
	kinds := map[string]int{}
	for _, o := range objs {
		what := o.GetKind() + " " + o.GetName() + " (" + rbacManifest + ")"
		if o.GetAPIVersion() != rbacv1.SchemeGroupVersion.String() {
			t.Fatalf("%s: apiVersion %s; this test knows %s", what, o.GetAPIVersion(), rbacv1.SchemeGroupVersion)
		}
		kinds[o.GetKind()]++
		o.SetAnnotations(nil)
		var err error
		switch o.GetKind() {
		case "ClusterRole":
			var cr rbacv1.ClusterRole
			fromUnstructured(t, o.Object, &cr)
			cr.Name += suffix
			_, err = api.ClusterRoles().Create(ctx, &cr, metav1.CreateOptions{})
			t.Cleanup(func() {
				deleteIgnoringNotFound(t, api.ClusterRoles().Delete(context.Background(), cr.Name, metav1.DeleteOptions{}))
			})
		case "ClusterRoleBinding":
			var crb rbacv1.ClusterRoleBinding
			fromUnstructured(t, o.Object, &crb)
			crb.Name += suffix
			crb.RoleRef.Name += suffix
			crb.Subjects = subject(what, crb.Subjects)
			_, err = api.ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{})
			t.Cleanup(func() {
				deleteIgnoringNotFound(t, api.ClusterRoleBindings().Delete(context.Background(), crb.Name, metav1.DeleteOptions{}))
			})
		case "Role":
			for _, ns := range secretNamespaces {
				var r rbacv1.Role
				fromUnstructured(t, o.Object, &r)
				r.Namespace = ns
				if _, err = api.Roles(ns).Create(ctx, &r, metav1.CreateOptions{}); err != nil {
					break
				}
			}
		case "RoleBinding":
			for _, ns := range secretNamespaces {
				var rb rbacv1.RoleBinding
				fromUnstructured(t, o.Object, &rb)
				rb.Namespace = ns
				if rb.RoleRef.Kind == "ClusterRole" {
					rb.RoleRef.Name += suffix
				}
				rb.Subjects = subject(what, rb.Subjects)
				if _, err = api.RoleBindings(ns).Create(ctx, &rb, metav1.CreateOptions{}); err != nil {
					break
				}
			}
		default:
			t.Fatalf("%s: this test does not know what a %s grants", what, o.GetKind())
		}
		if err != nil {
			t.Fatalf("%s: create: %v", what, err)
		}
	}
	for _, k := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
		if kinds[k] == 0 {
			t.Fatalf("%s has no %s; this test expects the namespaces ClusterRole and the per-namespace secrets Role, each bound", rbacManifest, k)
		}
	}
}

func fromUnstructured(t *testing.T, obj map[string]any, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj, into, true); err != nil {
		t.Fatalf("%s: %v", rbacManifest, err)
	}
}

func deleteIgnoringNotFound(t *testing.T, err error) {
	t.Helper()
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("cleanup: %v", err)
	}
}

// TestManifestsRBAC applies the RBAC of deploy/manifests for real to a
// service account with a token of its own, pull secrets granted in one
// namespace, and asks the apiserver what that identity may do: through
// SelfSubjectAccessReview (one question per verb, resource and namespace)
// and SelfSubjectRulesReview (everything it may do in a namespace). It may
// get namespaces cluster-wide (keyward serve reads one namespace's labels
// at a time) and get secrets in the listed namespace; nothing else beyond
// what every authenticated user may do, no secrets elsewhere, and no list
// or watch of secrets anywhere (a watch would hand over every secret of
// the namespace).
func TestManifestsRBAC(t *testing.T) {
	cp := k8senv.Shared(t)
	ctx := context.Background()
	listed := cp.Namespace(t, nil)
	other := cp.Namespace(t, nil)
	id := cp.ServiceAccount(t, cp.Namespace(t, nil), "keyward")
	applyShippedRBAC(t, cp, id, listed)

	type question struct {
		verb, resource, ns string
		allowed            bool
	}
	questions := []question{
		{"get", "namespaces", "", true},
		{"get", "namespaces", other, true},
		{"get", "secrets", listed, true},

		{"list", "namespaces", "", false},
		{"watch", "namespaces", "", false},

		{"create", "namespaces", "", false},
		{"update", "namespaces", "", false},
		{"patch", "namespaces", "", false},
		{"delete", "namespaces", "", false},
		{"get", "secrets", "", false}, // all namespaces
		{"list", "secrets", "", false},
		{"watch", "secrets", "", false},
		{"get", "secrets", other, false},
		{"get", "secrets", id.Namespace, false}, // not even its own
		{"list", "secrets", listed, false},
		{"watch", "secrets", listed, false},
		{"create", "secrets", listed, false},
		{"update", "secrets", listed, false},
		{"delete", "secrets", listed, false},
		{"get", "configmaps", listed, false},
		{"get", "pods", listed, false},
		{"create", "pods", listed, false},
		{"get", "serviceaccounts", id.Namespace, false},
	}
	for _, q := range questions {
		r, err := id.Clientset.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
				Verb: q.verb, Resource: q.resource, Namespace: q.ns}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("SelfSubjectAccessReview as %s: %v", id.Username, err)
		}
		if r.Status.Allowed != q.allowed {
			where := "cluster-wide"
			if q.ns != "" {
				where = "in namespace " + q.ns
			}
			t.Errorf("%s may %s %s %s: %v, want %v (%s)", id.Username, q.verb, q.resource, where, r.Status.Allowed, q.allowed, r.Status.Reason)
		}
	}
	// The same through the admin's SubjectAccessReview, which names the
	// user instead of authenticating as it: the ServiceAccount subject of
	// the bindings is this user and its groups.
	for _, q := range questions {
		r, err := cp.Clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
			Spec: authzv1.SubjectAccessReviewSpec{User: id.Username,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + id.Namespace, "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{Verb: q.verb, Resource: q.resource, Namespace: q.ns}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != q.allowed {
			t.Errorf("SubjectAccessReview: %s may %s %s in %q: %v, want %v (%s)", id.Username, q.verb, q.resource, q.ns, r.Status.Allowed, q.allowed, r.Status.Reason)
		}
	}

	// Everything it may do, per namespace: the shipped rules and what
	// every authenticated user may do (ask about itself), nothing more.
	want := map[string][]string{
		listed: {"/namespaces: get", "/secrets: get"},
		other:  {"/namespaces: get"},
	}
	for _, ns := range []string{listed, other} {
		r, err := id.Clientset.AuthorizationV1().SelfSubjectRulesReviews().Create(ctx, &authzv1.SelfSubjectRulesReview{
			Spec: authzv1.SelfSubjectRulesReviewSpec{Namespace: ns},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Incomplete {
			t.Errorf("SelfSubjectRulesReview in %s is incomplete: %s", ns, r.Status.EvaluationError)
		}
		got := grants(r.Status.ResourceRules)
		if !slices.Equal(got, want[ns]) {
			t.Errorf("in namespace %s, %s may:\n  %s\nwant:\n  %s", ns, id.Username, strings.Join(got, "\n  "), strings.Join(want[ns], "\n  "))
		}
	}
}

// grants flattens resource rules to sorted "group/resource: verbs" lines,
// leaving out the self-reviews every authenticated user may create
// (the bootstrap ClusterRole system:basic-user).
func grants(rules []authzv1.ResourceRule) []string {
	perResource := map[string][]string{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				if (g == "authorization.k8s.io" || g == "authentication.k8s.io") && strings.HasPrefix(res, "selfsubject") {
					continue
				}
				key := g + "/" + res
				if len(r.ResourceNames) > 0 {
					key += "[" + strings.Join(r.ResourceNames, ",") + "]"
				}
				perResource[key] = append(perResource[key], r.Verbs...)
			}
		}
	}
	var out []string
	for k, verbs := range perResource {
		sort.Strings(verbs)
		out = append(out, k+": "+strings.Join(slices.Compact(verbs), ","))
	}
	sort.Strings(out)
	return out
}
