package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
)

// regoShim stands in for Gatekeeper's external_data builtin: it answers
// the fixture's response when the template asks provider "keyward", and
// nothing otherwise (so a template asking another provider gets no
// violation, and the tests expecting one fail). Gatekeeper's response
// shape: responses [[key, value]...], errors [[key, message]...],
// system_error (externaldata.gatekeeper.sh, frameworks/constraint
// externaldata Response).
const regoShim = `
external_data(request) = response {
	request.provider == "keyward"
	data.fixture.keys == request.keys
	response := data.fixture.response
}
`

// regoCase is one admission request and what keyward answers.
type regoCase struct {
	kind string
	// namespace is the request's namespace ("" for none): the keys sent
	// are then [namespace]image.
	namespace string
	object    map[string]any
	// answers maps an image to keyward's value for it (a verify result),
	// or to an error when errs has it.
	answers map[string]any
	errs    map[string]string
	sysErr  string
	// want are substrings, one per expected violation.
	want []string
}

func podSpec(containers, initContainers, ephemeral []string) map[string]any {
	list := func(images []string) []any {
		var out []any
		for i, img := range images {
			out = append(out, map[string]any{"name": "c" + string(rune('a'+i)), "image": img})
		}
		return out
	}
	spec := map[string]any{"containers": list(containers)}
	if initContainers != nil {
		spec["initContainers"] = list(initContainers)
	}
	if ephemeral != nil {
		spec["ephemeralContainers"] = list(ephemeral)
	}
	return spec
}

func verified(ok bool, msg string) map[string]any {
	r := map[string]any{"version": "1", "reference": "x", "verified": ok, "skipped": false, "signatures": []any{}, "elapsedMs": 1}
	if msg != "" {
		r["error"] = map[string]any{"kind": "no-signature", "message": msg}
	}
	return r
}

// TestGatekeeperRego evaluates the Rego of the shipped ConstraintTemplate
// (deploy/gatekeeper) with the OPA CLI, Gatekeeper's external_data
// replaced by a shim that checks the provider and keys asked for and
// answers a fixture.
func TestGatekeeperRego(t *testing.T) {
	opa := testenv.Tool(t, "opa")
	g := &set{objs: loadDir(t, gatekeeperDir)}
	var p []string
	tmpl := one[constraintTemplate](g, "ConstraintTemplate", &p)
	if tmpl == nil {
		t.Fatal(p)
	}
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "template.rego")
	if err := os.WriteFile(policyFile, []byte(tmpl.Spec.Targets[0].Rego+regoShim), 0o644); err != nil {
		t.Fatal(err)
	}

	const (
		app     = "registry.example.com/shop/web:1.4.2"
		sidecar = "registry.example.com/shop/proxy@sha256:aaaa"
		initImg = "registry.example.com/shop/migrate:7"
		debug   = "registry.example.com/tools/debug:1"
	)
	allOK := map[string]any{app: verified(true, ""), sidecar: verified(true, ""), initImg: verified(true, ""), debug: verified(true, "")}
	with := func(m map[string]any, img string, v any) map[string]any {
		out := map[string]any{}
		for k, x := range m {
			out[k] = x
		}
		if v == nil {
			delete(out, img)
		} else {
			out[img] = v
		}
		return out
	}
	pod := map[string]any{"spec": podSpec([]string{app, sidecar}, []string{initImg}, []string{debug})}
	template := func(spec map[string]any) map[string]any {
		return map[string]any{"spec": map[string]any{"template": map[string]any{"spec": spec}}}
	}
	cronJob := map[string]any{"spec": map[string]any{"jobTemplate": map[string]any{"spec": map[string]any{"template": map[string]any{"spec": podSpec([]string{app}, []string{initImg}, nil)}}}}}
	cases := map[string]regoCase{
		"pod, every image verified": {kind: "Pod", object: pod, answers: allOK},
		"pod, sidecar unsigned": {kind: "Pod", object: pod, answers: with(allOK, sidecar, verified(false, "no signature is associated with the artifact")),
			want: []string{"keyward: image " + sidecar + " is not verified: no signature is associated with the artifact"}},
		"pod, init container error": {kind: "Pod", object: pod, answers: with(allOK, initImg, nil), errs: map[string]string{initImg: "registry unreachable"},
			want: []string{"keyward: image " + initImg + ": registry unreachable"}},
		"pod, ephemeral container not verified, no reason": {kind: "Pod", object: pod, answers: with(allOK, debug, map[string]any{"verified": false}),
			want: []string{"keyward: image " + debug + " is not verified: no verification result"}},
		"pod, verified missing": {kind: "Pod", object: pod, answers: with(allOK, app, map[string]any{"reference": app}),
			want: []string{"keyward: image " + app + " is not verified"}},
		"pod, verified is a string": {kind: "Pod", object: pod, answers: with(allOK, app, map[string]any{"verified": "true"}),
			want: []string{"keyward: image " + app + " is not verified"}},
		"pod, an image unanswered": {kind: "Pod", object: pod, answers: with(allOK, app, nil),
			want: []string{"keyward: no answer for image " + app}},
		"pod, system error": {kind: "Pod", object: pod, answers: map[string]any{}, sysErr: "failed to send external data request: timeout",
			want: []string{"keyward: calling the external data provider failed: failed to send external data request: timeout"}},
		"deployment template": {kind: "Deployment", object: template(podSpec([]string{app}, nil, nil)),
			answers: map[string]any{app: verified(false, "signature is not produced by a trusted signer")},
			want:    []string{"keyward: image " + app + " is not verified: signature is not produced by a trusted signer"}},
		"statefulset template verified": {kind: "StatefulSet", object: template(podSpec([]string{app, sidecar}, nil, nil)),
			answers: map[string]any{app: verified(true, ""), sidecar: verified(true, "")}},
		"cronjob template": {kind: "CronJob", object: cronJob, answers: map[string]any{app: verified(true, ""), initImg: verified(false, "no signature")},
			want: []string{"keyward: image " + initImg + " is not verified: no signature"}},
		"no images": {kind: "Pod", object: map[string]any{"spec": map[string]any{}}, answers: map[string]any{}},
		"namespaced pod, sidecar unsigned": {kind: "Pod", namespace: "shop", object: pod, answers: with(allOK, sidecar, verified(false, "no signature")),
			want: []string{"keyward: image " + sidecar + " is not verified: no signature"}},
		"namespaced deployment verified": {kind: "Deployment", namespace: "shop", object: template(podSpec([]string{app}, nil, nil)),
			answers: map[string]any{app: verified(true, "")}},
		"namespaced pod, an image unanswered": {kind: "Pod", namespace: "shop", object: pod, answers: with(allOK, debug, nil),
			want: []string{"keyward: no answer for image " + debug}},
		"namespaced pod, error": {kind: "Pod", namespace: "shop", object: pod, answers: with(allOK, app, nil), errs: map[string]string{app: "boom"},
			want: []string{"keyward: image " + app + ": boom"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			got := evalRego(t, opa, policyFile, c)
			if len(got) != len(c.want) {
				t.Fatalf("violations %q, want %d matching %q", got, len(c.want), c.want)
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(got, func(g string) bool { return strings.Contains(g, w) }) {
					t.Errorf("no violation says %q; violations: %q", w, got)
				}
			}
		})
	}
}

// evalRego runs opa eval on one case and returns the violation messages.
func evalRego(t *testing.T, opa, policyFile string, c regoCase) []string {
	t.Helper()
	// The keys Gatekeeper would send: every image, sorted (the template
	// builds them from a set), prefixed [namespace] for a namespaced
	// request.
	var images []string
	for _, list := range []string{"containers", "initContainers", "ephemeralContainers"} {
		for _, spec := range podSpecs(c.kind, c.object) {
			if cs, ok := spec[list].([]any); ok {
				for _, x := range cs {
					images = append(images, x.(map[string]any)["image"].(string))
				}
			}
		}
	}
	sort.Strings(images)
	images = slices.Compact(images)
	keys, responses, errs := []string{}, []any{}, []any{}
	for _, img := range images {
		k := img
		if c.namespace != "" {
			k = "[" + c.namespace + "]" + img
		}
		keys = append(keys, k)
		if v, ok := c.answers[img]; ok {
			responses = append(responses, []any{k, v})
		}
		if e, ok := c.errs[img]; ok {
			errs = append(errs, []any{k, e})
		}
	}
	fixture := map[string]any{"fixture": map[string]any{
		"keys":     keys,
		"response": map[string]any{"responses": responses, "errors": errs, "status_code": 200, "system_error": c.sysErr},
	}}
	review := map[string]any{
		"kind":   map[string]any{"group": "", "version": "v1", "kind": c.kind},
		"object": c.object,
	}
	if c.namespace != "" {
		review["namespace"] = c.namespace
	}
	input := map[string]any{"review": review}
	dir := t.TempDir()
	write := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dataFile, inputFile := write("data.json", fixture), write("input.json", input)
	cmd := exec.Command(opa, "eval", "--v0-compatible", "--fail-defined=false", "--format", "json",
		"--data", policyFile, "--data", dataFile, "--input", inputFile, "data.keywardverification.violation")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("opa eval: %v\n%s%s", err, out, stderr)
	}
	var res struct {
		Result []struct {
			Expressions []struct {
				Value []struct {
					Msg string `json:"msg"`
				} `json:"value"`
			} `json:"expressions"`
		} `json:"result"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("opa eval output: %v\n%s", err, out)
	}
	if len(res.Result) != 1 || len(res.Result[0].Expressions) != 1 {
		t.Fatalf("opa eval: violation is undefined (the template does not compile as Gatekeeper expects?):\n%s", out)
	}
	var msgs []string
	for _, v := range res.Result[0].Expressions[0].Value {
		msgs = append(msgs, v.Msg)
	}
	return msgs
}

// podSpecs returns the pod specs of an object of kind, as the template
// reads them.
func podSpecs(kind string, obj map[string]any) []map[string]any {
	get := func(m map[string]any, path ...string) map[string]any {
		for _, p := range path {
			next, ok := m[p].(map[string]any)
			if !ok {
				return nil
			}
			m = next
		}
		return m
	}
	var spec map[string]any
	switch kind {
	case "Pod":
		spec = get(obj, "spec")
	case "CronJob":
		spec = get(obj, "spec", "jobTemplate", "spec", "template", "spec")
	default:
		spec = get(obj, "spec", "template", "spec")
	}
	if spec == nil {
		return nil
	}
	return []map[string]any{spec}
}
