package k8s

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testenv/k8senv"
)

// manifestsDir holds the plain manifests an operator applies
// (kubectl apply -f deploy/manifests/).
const manifestsDir = "deploy/manifests"

// externalGroups are API groups the manifests use whose CRDs another
// project installs (cert-manager); the test control plane does not serve
// them, so their objects are only checked to be well-formed.
var externalGroups = map[string]bool{"cert-manager.io": true}

// TestManifestsDryRun creates every object of deploy/manifests/*.yaml in
// the real kube-apiserver with server-side dry run and strict field
// validation: unknown or misspelt fields, wrong types, invalid webhook
// configurations and RBAC rules are refused as kubectl apply would refuse
// them. Namespaces are created for real first (a dry-run Namespace does not
// hold the objects after it). A folder that is present but holds no
// manifest fails.
func TestManifestsDryRun(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), manifestsDir)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s does not exist in this checkout", manifestsDir)
	}
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var objs []*unstructured.Unstructured
	for _, f := range files {
		objs = append(objs, decodeManifests(t, f)...)
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no Kubernetes object in *.yaml", manifestsDir)
	}

	cp := k8senv.Shared(t)
	ctx := context.Background()
	groups, err := restmapper.GetAPIGroupResources(cp.Clientset.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	dyn, err := dynamic.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	// Namespaces first, for real.
	for _, o := range objs {
		if o.GetKind() != "Namespace" || o.GetAPIVersion() != "v1" {
			continue
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: o.GetName()}}
		if _, err := cp.Clientset.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("namespace %s: %v", o.GetName(), err)
		}
	}
	checked := 0
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		what := gvk.Kind + " " + o.GetNamespace() + "/" + o.GetName() + " (" + o.GetAnnotations()[sourceAnnotation] + ")"
		if externalGroups[gvk.Group] {
			t.Logf("not served by the test control plane, not checked: %s", what)
			continue
		}
		mapping, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(mapping.Resource)
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				t.Errorf("%s: a namespaced object without metadata.namespace lands in whatever namespace kubectl's context names", what)
				continue
			}
			ri = dyn.Resource(mapping.Resource).Namespace(o.GetNamespace())
		} else if o.GetNamespace() != "" {
			t.Errorf("%s: cluster-scoped, but has metadata.namespace", what)
		}
		clean := o.DeepCopy()
		anns := clean.GetAnnotations()
		delete(anns, sourceAnnotation)
		clean.SetAnnotations(anns)
		opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: metav1.FieldValidationStrict}
		if gvk.Kind == "Namespace" && gvk.Group == "" {
			// Created above; a dry-run update checks it just as well.
			cur, err := ri.Get(ctx, clean.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			clean.SetResourceVersion(cur.GetResourceVersion())
			_, err = ri.Update(ctx, clean, metav1.UpdateOptions{DryRun: opts.DryRun, FieldValidation: opts.FieldValidation})
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			checked++
			continue
		}
		if _, err := ri.Create(ctx, clean, opts); err != nil {
			t.Errorf("%s: the apiserver refuses it: %v", what, err)
			continue
		}
		checked++
	}
	if checked == 0 {
		t.Fatalf("no object of %s was checked", manifestsDir)
	}
	t.Logf("%d objects of %d files accepted by kube-apiserver v1.31.0 (dry run, strict)", checked, len(files))
}

// sourceAnnotation carries the file an object was read from, for messages;
// it is removed before the object is sent.
const sourceAnnotation = "keyward.test/source"

// decodeManifests reads the YAML documents of one file.
func decodeManifests(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: document %d: %v", file, i+1, err)
		}
		if len(m) == 0 {
			continue // an empty document (a comment, a trailing ---)
		}
		o := &unstructured.Unstructured{Object: m}
		if o.GetKind() == "" || o.GetAPIVersion() == "" || o.GetName() == "" {
			t.Errorf("%s: document %d has no kind, apiVersion or metadata.name", file, i+1)
			continue
		}
		anns := o.GetAnnotations()
		if anns == nil {
			anns = map[string]string{}
		}
		anns[sourceAnnotation] = strings.TrimPrefix(file, filepath.Dir(filepath.Dir(file))+string(filepath.Separator))
		o.SetAnnotations(anns)
		out = append(out, o)
	}
	return out
}
