package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/verify"
)

// strictPolicy is a trust policy trusting the world's trust store for
// identity, at level strict.
func strictPolicy(identity string) []byte {
	b, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{map[string]any{
		"name": "all", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "strict"},
		"trustStores": []string{"ca:serve"}, "trustedIdentities": []string{identity}}}})
	return b
}

const strangerIdentity = "x509.subject: C=US, ST=WA, O=keyward-test, CN=somebody else"

// writeFile replaces a file the way an editor or kubectl does: a new
// file renamed over the old, so that a reader never sees half of it.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func wantVerdict(t *testing.T, what string, r *verify.ReferenceResult, verified bool, kind verify.ArtifactErrorKind, msg string) {
	t.Helper()
	switch {
	case r.Verified != verified:
		t.Errorf("%s: verified %v, error %+v; want verified %v", what, r.Verified, r.Error, verified)
	case !verified && (r.Error == nil || r.Error.Kind != kind || !strings.Contains(r.Error.Message, msg)):
		t.Errorf("%s: error %+v; want kind %s with %q", what, r.Error, kind, msg)
	}
}

// TestPolicySetSelection checks that a request is verified against the
// first policy set that lists its namespace or whose selector matches the
// namespace's labels (read through client-go), else the default; that the
// verdict of one artifact under one set is not served under another; and
// that a namespace whose labels cannot be read is denied when a selector
// set could match it, with the reason.
func TestPolicySetSelection(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	api := startAPIServer(t)
	api.namespace("labelled", map[string]string{"tier": "prod", "team": "b"})
	api.namespace("dev", map[string]string{"tier": "dev", "team": "b"})
	api.namespace("legacy", map[string]string{"tier": "prod", "team": "b", "legacy": "yes"})
	api.namespace("team-c", map[string]string{"team": "c"})
	dir := t.TempDir()
	stranger := testpki.WriteFile(t, dir, "stranger.json", strictPolicy(strangerIdentity), 0o644)

	cfg := w.config(w.reg.Host)
	cfg.Kubernetes.Kubeconfig = api.kubeconfig
	cfg.PolicySets = []NamedPolicySet{
		{Name: "listed", Namespaces: []string{"team-a"}, PolicySet: PolicySet{TrustPolicy: stranger, TrustStore: w.store}},
		{Name: "by-labels", NamespaceSelector: &LabelSelector{
			MatchLabels: map[string]string{"tier": "prod"},
			MatchExpressions: []LabelSelectorRequirement{
				{Key: "team", Operator: "In", Values: []string{"b", "c"}},
				{Key: "legacy", Operator: "DoesNotExist"},
			}}, PolicySet: PolicySet{TrustPolicy: stranger, TrustStore: w.store}},
		{Name: "team-c", NamespaceSelector: &LabelSelector{
			MatchExpressions: []LabelSelectorRequirement{{Key: "team", Operator: "NotIn", Values: []string{"a", "b"}}, {Key: "team", Operator: "Exists"}}},
			PolicySet: PolicySet{TrustPolicy: stranger, TrustStore: w.store}},
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	verifyIn := func(ns string) *verify.ReferenceResult {
		return s.VerifyImage(ctx, ImageRequest{Namespace: ns, Reference: signed})
	}
	// The default policy first: its verdict is cached, and must not be
	// served for the sets that trust another identity.
	wantVerdict(t, "no namespace", verifyIn(""), true, "", "")
	wantVerdict(t, "listed namespace", verifyIn("team-a"), false, verify.ErrorVerificationFailed, "")
	wantVerdict(t, "matchLabels and In and DoesNotExist", verifyIn("labelled"), false, verify.ErrorVerificationFailed, "")
	wantVerdict(t, "NotIn and Exists", verifyIn("team-c"), false, verify.ErrorVerificationFailed, "")
	wantVerdict(t, "other labels: default", verifyIn("dev"), true, "", "")
	wantVerdict(t, "DoesNotExist fails: default", verifyIn("legacy"), true, "", "")
	if v := s.cache.Verifications(); v != 2 {
		t.Errorf("%d verifications, want 2 (one per trust policy)", v)
	}

	// A listed namespace needs no API request; labels are cached.
	hits := api.hits.Load()
	verifyIn("team-a")
	verifyIn("labelled")
	if n := api.hits.Load() - hits; n != 0 {
		t.Errorf("%d API requests for a listed namespace and a cached one", n)
	}

	// Labels that cannot be read: denied, never the default's verdict.
	wantVerdict(t, "unknown namespace", verifyIn("nowhere"), false, verify.ErrorPolicy, `cannot choose the policy set of namespace nowhere (policy set "by-labels" selects namespaces by label)`)
	api.status.Store(http.StatusForbidden)
	wantVerdict(t, "forbidden", verifyIn("fresh"), false, verify.ErrorPolicy, "get on namespaces")
	api.status.Store(http.StatusInternalServerError)
	wantVerdict(t, "API error", verifyIn("fresh2"), false, verify.ErrorPolicy, "cannot choose the policy set of namespace fresh2")
	wantVerdict(t, "listed, API down", verifyIn("team-a"), false, verify.ErrorVerificationFailed, "")
}

// TestPolicySetNeedsKubernetes checks that a selector set without a
// reachable Kubernetes configuration fails at start.
func TestPolicySetNeedsKubernetes(t *testing.T) {
	dir := t.TempDir()
	p := testpki.WriteFile(t, dir, "p.json", []byte(`{"version":"1.0","trustPolicies":[{"name":"s","registryScopes":["*"],"signatureVerification":{"level":"skip"}}]}`), 0o644)
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := New(&Config{PlainHTTP: true, Policy: PolicySet{TrustPolicy: p, TrustStore: dir},
		PolicySets: []NamedPolicySet{{Name: "x", NamespaceSelector: &LabelSelector{}, PolicySet: PolicySet{TrustPolicy: p, TrustStore: dir}}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "set kubernetes.kubeconfig") {
		t.Errorf("err = %v", err)
	}
}

// TestHotReload changes the files of a running server: a valid change is
// swapped in (the verdict changes, the old set's cached verdict is not
// reused); an invalid trust policy, an unusable trust store and an
// invalid configuration file are refused, logged and counted once each,
// and the old set keeps serving; a set added to the configuration file
// serves; and the poll loop of Serve does the same while /readyz stays
// ready.
func TestHotReload(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	dir := t.TempDir()
	team := testpki.WriteFile(t, dir, "team.json", strictPolicy(signerIdentity), 0o644)
	store := filepath.Join(dir, "store")
	copyTree(t, w.store, store)
	testpki.WriteFile(t, dir, "other.json", strictPolicy(strangerIdentity), 0o644)
	config := func(extra string) string {
		return fmt.Sprintf(`listen: 127.0.0.1:0
plainHTTP: true
policy: {trustPolicy: %q, trustStore: %q}
policySets:
- {name: team, namespaces: [team], trustPolicy: team.json, trustStore: store}
%sregistry: {plainHTTPHosts: [%q]}
reload: {interval: 50ms}
`, w.policy, w.store, extra, w.reg.Host)
	}
	cfgFile := filepath.Join(dir, "serve.yaml")
	writeFile(t, cfgFile, []byte(config("")))
	cfg, err := LoadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []string
	var logs strings.Builder
	s, err := New(cfg, Options{Logger: newTestLogger(&mu, &logs), OnReload: func(set string, err error) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, fmt.Sprintf("%s:%v", set, err != nil))
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inTeam := func() *verify.ReferenceResult {
		return s.VerifyImage(ctx, ImageRequest{Namespace: "team", Reference: signed})
	}
	stats := func(what string, successes, failures uint64) {
		t.Helper()
		if got := s.ReloadStats(); got.Successes != successes || got.Failures != failures {
			t.Errorf("%s: reload stats %+v, want %d successes, %d failures", what, got, successes, failures)
		}
	}
	wantVerdict(t, "before", inTeam(), true, "", "")

	s.reloadOnce(ctx)
	stats("nothing changed", 0, 0)

	// A valid change: the signer is no longer trusted.
	writeFile(t, team, strictPolicy(strangerIdentity))
	s.reloadOnce(ctx)
	stats("valid policy", 1, 0)
	wantVerdict(t, "after a valid change", inTeam(), false, verify.ErrorVerificationFailed, "")

	// An invalid policy: refused once, the last valid set keeps serving.
	writeFile(t, team, []byte(`{"version": "1.0", "trustPolicies": [`))
	s.reloadOnce(ctx)
	s.reloadOnce(ctx)
	stats("invalid policy", 1, 1)
	if e := s.ReloadStats().LastError; !strings.Contains(e, `policySets "team"`) || !strings.Contains(e, "team.json") {
		t.Errorf("last error %q names neither the set nor the file", e)
	}
	wantVerdict(t, "with an invalid policy on disk", inTeam(), false, verify.ErrorVerificationFailed, "")

	// Fixed: trusted again.
	writeFile(t, team, strictPolicy(signerIdentity))
	s.reloadOnce(ctx)
	stats("fixed policy", 2, 1)
	wantVerdict(t, "fixed", inTeam(), true, "", "")

	// A trust store emptied: refused, the set keeps its certificates.
	certs, _ := filepath.Glob(filepath.Join(store, "x509", "ca", "serve", "*"))
	for _, c := range certs {
		os.Remove(c)
	}
	s.reloadOnce(ctx)
	stats("empty trust store", 2, 2)
	if e := s.ReloadStats().LastError; !strings.Contains(e, "trustStore") {
		t.Errorf("last error %q does not name the trust store", e)
	}
	wantVerdict(t, "with an empty trust store on disk", inTeam(), true, "", "")
	copyTree(t, w.store, store)

	// An invalid configuration file: refused whole.
	writeFile(t, cfgFile, []byte(config("- {name: team, namespaces: [x], trustPolicy: team.json, trustStore: store}\n")))
	s.reloadOnce(ctx)
	stats("invalid configuration", 2, 3)
	if e := s.ReloadStats().LastError; !strings.Contains(e, `/policySets/1/name: the name "team" is already the name of /policySets/0`) {
		t.Errorf("last error %q", e)
	}
	wantVerdict(t, "with an invalid configuration on disk", inTeam(), true, "", "")

	// A set added to the configuration (and the trust store restored
	// meanwhile) serves; unchanged sets are kept.
	writeFile(t, cfgFile, []byte(config("- {name: other, namespaces: [other], trustPolicy: other.json, trustStore: store}\n")))
	before := s.table.Load()
	s.reloadOnce(ctx)
	stats("set added", 3, 3)
	after := s.table.Load()
	if len(after.sets) != 2 || after.def != before.def {
		t.Errorf("after adding a set: %d sets, default reused %v", len(after.sets), after.def == before.def)
	}
	wantVerdict(t, "added set", s.VerifyImage(ctx, ImageRequest{Namespace: "other", Reference: signed}), false, verify.ErrorVerificationFailed, "")
	wantVerdict(t, "team after adding", inTeam(), true, "", "")

	mu.Lock()
	got := strings.Join(events, " ")
	logText := logs.String()
	mu.Unlock()
	if want := "team:false team:true team:false team:true :true :false"; got != want {
		t.Errorf("OnReload events %q, want %q", got, want)
	}
	if !strings.Contains(logText, "reload refused") || !strings.Contains(logText, "team.json") {
		t.Errorf("the log does not say what was refused:\n%s", logText)
	}

	// The poll loop: readiness holds while an invalid set is refused, and
	// a valid change is picked up without a call.
	base, _ := serve(t, s)
	waitReady(t, http.DefaultClient, base)
	writeFile(t, team, []byte("not json"))
	waitFor(t, "the loop to refuse the invalid policy", func() bool { return s.ReloadStats().Failures == 4 })
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readyz with a refused reload: %d", resp.StatusCode)
	}
	wantVerdict(t, "served during a refused reload", inTeam(), true, "", "")
	writeFile(t, team, strictPolicy(strangerIdentity))
	waitFor(t, "the loop to load the valid policy", func() bool { return s.ReloadStats().Successes == 4 })
	wantVerdict(t, "after the loop reloaded", inTeam(), false, verify.ErrorVerificationFailed, "")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mutexWriter appends to b under mu.
type mutexWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (l mutexWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func newTestLogger(mu *sync.Mutex, b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(mutexWriter{mu, b}, nil))
}

// TestReloadConfigMapVolume lays the trust policy and trust store out as
// the kubelet lays out a ConfigMap volume (files linked through ..data to
// a timestamped folder, swapped by renaming a new ..data link over the
// old) and checks that the swap is seen and loaded.
func TestReloadConfigMapVolume(t *testing.T) {
	w := newWorld(t)
	signed := w.signed(t, "team/app")
	vol := t.TempDir()
	version := func(name string, policy []byte) {
		t.Helper()
		d := filepath.Join(vol, name)
		copyTree(t, w.store, filepath.Join(d, "store"))
		testpki.WriteFile(t, d, "trustpolicy.json", policy, 0o644)
		if err := os.Symlink(name, filepath.Join(vol, "..data.tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(vol, "..data.tmp"), filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_12_06_a", strictPolicy(signerIdentity))
	for _, f := range []string{"trustpolicy.json", "store"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(vol, f)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := w.config(w.reg.Host)
	cfg.PolicySets = []NamedPolicySet{{Name: "team", Namespaces: []string{"team"},
		PolicySet: PolicySet{TrustPolicy: filepath.Join(vol, "trustpolicy.json"), TrustStore: filepath.Join(vol, "store")}}}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wantVerdict(t, "first version", s.VerifyImage(ctx, ImageRequest{Namespace: "team", Reference: signed}), true, "", "")
	version("..2026_12_06_b", strictPolicy(strangerIdentity))
	s.reloadOnce(ctx)
	if st := s.ReloadStats(); st.Successes != 1 || st.Failures != 0 {
		t.Errorf("after the swap: %+v", st)
	}
	wantVerdict(t, "second version", s.VerifyImage(ctx, ImageRequest{Namespace: "team", Reference: signed}), false, verify.ErrorVerificationFailed, "")
}
