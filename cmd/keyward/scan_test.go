package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	godigest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/santhosh-tekuri/jsonschema/v5"

	keyward "github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/scan"
	"github.com/keyward/keyward/verify"
)

// runScanCmd runs keyward scan in-process.
func runScanCmd(t *testing.T, environ map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := run(append([]string{"scan"}, args...), strings.NewReader(""), &out, &errb, func(k string) string { return environ[k] })
	return status, out.String(), errb.String()
}

var (
	scanSchemaOnce sync.Once
	scanSchema     *jsonschema.Schema
	scanSchemaErr  error
)

// decodeRecords decodes scan JSON Lines, validating each against
// scan-result.schema.json.
func decodeRecords(t *testing.T, out string) []scan.Record {
	t.Helper()
	scanSchemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft2020
		if scanSchemaErr = c.AddResource("scan-result.schema.json", bytes.NewReader(keyward.ScanResultSchema())); scanSchemaErr == nil {
			scanSchema, scanSchemaErr = c.Compile("scan-result.schema.json")
		}
	})
	if scanSchemaErr != nil {
		t.Fatal(scanSchemaErr)
	}
	var recs []scan.Record
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if err := scanSchema.Validate(v); err != nil {
			t.Fatalf("line %s does not validate: %v", sc.Text(), err)
		}
		var r scan.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// scanWorld signs test artifacts: notation with the keyward plugin, a
// local key, an untrusted chain, and (when built) cosign with a key pair.
type scanWorld struct {
	*signedWorld
	untrustedKey, untrustedChain string
	cosign                       string // cosign binary, "" when missing
	cosignDir                    string // holds cosign.key, cosign.pub
}

func newScanWorld(t *testing.T) *scanWorld {
	t.Helper()
	w := &scanWorld{signedWorld: newSignedWorld(t)}
	dir := t.TempDir()
	// A local key from a second CA, trusted by the same store.
	root := testpki.Root(t, "scan local root")
	leaf := root.Leaf(t, "scan local signer")
	w.n.AddTrustStore(t, "ca", "cmd", root.Cert)
	w.n.AddLocalKey(t, "local", leaf, root)
	// A chain the trust store does not know.
	other := testpki.Root(t, "scan untrusted root")
	key := testpki.Key(t, "EC-256", "scan untrusted")
	ol := other.Leaf(t, "scan untrusted signer", testpki.WithKey(key))
	w.untrustedKey = "file:" + testpki.WriteFile(t, dir, "untrusted.pem", testpki.KeyPEM(t, key), 0o600)
	w.untrustedChain = testpki.WriteFile(t, dir, "untrusted-chain.pem", testpki.CertsPEM(ol.Cert, other.Cert), 0o644)
	if bin := filepath.Join(os.Getenv("KEYWARD_TOOLS_BIN"), "cosign"); os.Getenv("KEYWARD_TOOLS_BIN") != "" {
		if _, err := os.Stat(bin); err == nil {
			w.cosign = bin
			w.cosignDir = t.TempDir()
			w.runCosign(t, "generate-key-pair")
		}
	}
	return w
}

// runCosign runs cosign in cosignDir with an empty key password, no
// transparency log and plain HTTP.
func (w *scanWorld) runCosign(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command(w.cosign, args...)
	cmd.Dir = w.cosignDir
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=", "COSIGN_EXPERIMENTAL=1", "HOME="+w.cosignDir, "DOCKER_CONFIG="+w.cosignDir, "SIGSTORE_NO_CACHE=1", "TUF_ROOT="+w.cosignDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (w *scanWorld) cosignSign(t *testing.T, ref string, extra ...string) {
	t.Helper()
	args := append([]string{"sign", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", "-y"}, extra...)
	w.runCosign(t, append(args, ref)...)
}

// notationSign signs ref with notation; extra are notation's flags.
func (w *scanWorld) notationSign(t *testing.T, reg *testenv.Registry, ref string, extra ...string) {
	t.Helper()
	args := []string{"sign", "--insecure-registry"}
	if reg.Referrers {
		args = append(args, "--force-referrers-tag=false")
	}
	w.n.MustRun(t, append(append(args, extra...), ref)...)
}

func (w *scanWorld) plugin(chainKey ...string) []string {
	key, chain := w.keyID, w.chain
	if len(chainKey) == 2 {
		key, chain = chainKey[0], chainKey[1]
	}
	return []string{"--plugin", "keyward", "--id", key, "--plugin-config", "cert_chain=" + chain}
}

// want is what the scan must report of a repository's tagged artifact.
type want struct {
	status  string
	verdict string
	formats []string // role:format of the signatures, sorted, deduplicated
	failed  string   // failedCheck, when the verdict is failed
}

// populate fills reg with the fixture and returns what each repository's
// tagged artifact must be reported as, and the index's platform manifests.
func (w *scanWorld) populate(t *testing.T, reg *testenv.Registry) (map[string]want, []ocispec.Descriptor, []string) {
	t.Helper()
	wants := map[string]want{}
	signed := want{status: scan.StatusSigned, verdict: scan.VerdictVerified, formats: []string{"signature:notation"}}

	ref, _ := testenv.PushTagged(t, reg, "app/jws", "v1")
	w.notationSign(t, reg, ref, w.plugin()...)
	wants["app/jws"] = signed

	ref, _ = testenv.PushTagged(t, reg, "app/cose", "v1")
	w.notationSign(t, reg, ref, append(w.plugin(), "--signature-format", "cose")...)
	wants["app/cose"] = signed

	ref, _ = testenv.PushTagged(t, reg, "app/envelope", "v1")
	w.notationSign(t, reg, ref, append(w.plugin(), "--plugin-config", "signing_mode=envelope")...)
	wants["app/envelope"] = signed

	ref, _ = testenv.PushTagged(t, reg, "app/envelope-cose", "v1")
	w.notationSign(t, reg, ref, append(w.plugin(), "--plugin-config", "signing_mode=envelope", "--signature-format", "cose")...)
	wants["app/envelope-cose"] = signed

	ref, _ = testenv.PushTagged(t, reg, "app/local", "v1")
	w.notationSign(t, reg, ref, "--key", "local")
	wants["app/local"] = signed

	testenv.PushTagged(t, reg, "app/unsigned", "v1")
	wants["app/unsigned"] = want{status: scan.StatusUnsigned, verdict: scan.VerdictFailed, failed: string(verify.ErrorNoSignature)}

	ref, _ = testenv.PushTagged(t, reg, "app/untrusted", "v1")
	w.notationSign(t, reg, ref, w.plugin(w.untrustedKey, w.untrustedChain)...)
	wants["app/untrusted"] = want{status: scan.StatusSigned, verdict: scan.VerdictFailed, formats: []string{"signature:notation"}, failed: "authenticity"}

	// Tampered: the signature of another artifact, its subject rewritten
	// to this one.
	_, target := testenv.PushTagged(t, reg, "app/tampered", "v1")
	otherRef, other := testenv.PushArtifact(t, reg, "app/tampered")
	w.notationSign(t, reg, otherRef, w.plugin()...)
	w.moveSignature(t, reg, "app/tampered", other, target)
	wants["app/tampered"] = want{status: scan.StatusSigned, verdict: scan.VerdictFailed, formats: []string{"signature:notation"}, failed: "targetArtifact"}

	ref, _, children := testenv.PushIndex(t, reg, "app/index", "v1",
		ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	w.notationSign(t, reg, ref, w.plugin()...)
	wants["app/index"] = signed

	testenv.PushTagged(t, reg, "skip/app", "v1")

	// Sigstore bundles v0.3 as cosign v3 writes them (no cosign v3 here:
	// built by hand, shared/formats.md A2).
	_, d := testenv.PushTagged(t, reg, "sigstore/keyed", "v1")
	pushBundle(t, reg, "sigstore/keyed", d, "https://sigstore.dev/cosign/sign/v1", nil)
	wants["sigstore/keyed"] = want{status: scan.StatusSigned, verdict: scan.VerdictNotVerifiable, formats: []string{"signature:sigstore-bundle"}, failed: string(verify.ErrorNoSignature)}
	_, d = testenv.PushTagged(t, reg, "sigstore/keyless", "v1")
	pushBundle(t, reg, "sigstore/keyless", d, "https://sigstore.dev/cosign/sign/v1", fulcioLeaf(t))
	pushBundle(t, reg, "sigstore/keyless", d, "https://slsa.dev/provenance/v1", fulcioLeaf(t))
	wants["sigstore/keyless"] = want{status: scan.StatusSigned, verdict: scan.VerdictNotVerifiable, formats: []string{"attestation:sigstore-bundle", "signature:sigstore-bundle"}, failed: string(verify.ErrorNoSignature)}

	var orphanRepos []string
	if !reg.Referrers {
		// Without the referrers API the signature stays behind in the
		// sha256-<hex> tag when its subject is deleted.
		ref, d := testenv.PushTagged(t, reg, "app/orphan", "v1")
		w.notationSign(t, reg, ref, w.plugin()...)
		testenv.DeleteManifest(t, reg, "app/orphan", d.Digest.String())
		orphanRepos = append(orphanRepos, "app/orphan")
	}

	if w.cosign != "" {
		ref, _ = testenv.PushTagged(t, reg, "cosign/keyed", "v1")
		w.cosignSign(t, ref)
		wants["cosign/keyed"] = want{status: scan.StatusSigned, verdict: scan.VerdictNotVerifiable, formats: []string{"signature:cosign-simple-signing"}, failed: string(verify.ErrorNoSignature)}

		ref, _ = testenv.PushTagged(t, reg, "cosign/oci11", "v1")
		w.cosignSign(t, ref, "--registry-referrers-mode=oci-1-1")
		wants["cosign/oci11"] = want{status: scan.StatusSigned, verdict: scan.VerdictNotVerifiable, formats: []string{"signature:cosign-simple-signing"}, failed: string(verify.ErrorNoSignature)}

		ref, _ = testenv.PushTagged(t, reg, "cosign/attest", "v1")
		pred := testpki.WriteFile(t, w.cosignDir, "predicate.json", []byte(`{"builder":{"id":"https://builder.example/test"},"buildType":"https://builder.example/type"}`), 0o644)
		w.runCosign(t, "attest", "--key", "cosign.key", "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry", "-y", "--type", "slsaprovenance", "--predicate", pred, ref)
		wants["cosign/attest"] = want{status: scan.StatusUnsigned, verdict: scan.VerdictFailed, formats: []string{"attestation:cosign-dsse"}, failed: string(verify.ErrorNoSignature)}

		ref, _ = testenv.PushTagged(t, reg, "cosign/sbom", "v1")
		sbom := testpki.WriteFile(t, w.cosignDir, "sbom.spdx.json", []byte(`{"spdxVersion":"SPDX-2.3","name":"test"}`), 0o644)
		w.runCosign(t, "attach", "sbom", "--allow-http-registry", "--allow-insecure-registry", "--sbom", sbom, "--type", "spdx", ref)
		wants["cosign/sbom"] = want{status: scan.StatusUnsigned, verdict: scan.VerdictFailed, formats: []string{"sbom:sbom"}, failed: string(verify.ErrorNoSignature)}

		// --recursive signs the index and each platform manifest.
		ref, _, _ = testenv.PushIndex(t, reg, "cosign/index", "v1",
			ocispec.Platform{OS: "linux", Architecture: "amd64"}, ocispec.Platform{OS: "linux", Architecture: "arm64"})
		w.cosignSign(t, ref, "--recursive")
		wants["cosign/index"] = want{status: scan.StatusSigned, verdict: scan.VerdictNotVerifiable, formats: []string{"signature:cosign-simple-signing"}, failed: string(verify.ErrorNoSignature)}

		ref, d := testenv.PushTagged(t, reg, "cosign/orphan", "v1")
		w.cosignSign(t, ref)
		testenv.DeleteManifest(t, reg, "cosign/orphan", d.Digest.String())
		orphanRepos = append(orphanRepos, "cosign/orphan")
	}
	return wants, children, orphanRepos
}

// targets names the fixture's repositories (olareg has no catalog API).
func targets(reg *testenv.Registry, wants map[string]want, orphans []string) []string {
	if !reg.Referrers {
		return []string{reg.Host}
	}
	out := []string{reg.Host + "/skip/app"}
	for repo := range wants {
		out = append(out, reg.Host+"/"+repo)
	}
	for _, repo := range orphans {
		out = append(out, reg.Host+"/"+repo)
	}
	sort.Strings(out)
	return out
}

// Identity of the hand-made Fulcio certificate.
const (
	fulcioSAN    = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
	fulcioIssuer = "https://token.actions.githubusercontent.com"
	fulcioRepo   = "https://github.com/acme/app"
	bundleHint   = "kp7Kyl9m0bGx5Q2Yq3bWq8dO1mE0Zk6pQyJ4Zg1uV3E="
)

// fulcioLeaf is a keyless signing certificate like Fulcio's (testpki gives
// it a subject, Fulcio's is empty): one URI SAN, the OIDC issuer (.1.8) and a source repository
// (.1.12).
func fulcioLeaf(t *testing.T) *x509.Certificate {
	t.Helper()
	root := testpki.Root(t, "scan fulcio root")
	return root.Leaf(t, "", testpki.WithSAN(testpki.SANURI, fulcioSAN), testpki.WithFulcio(1, fulcioIssuer),
		testpki.WithFulcio(8, fulcioIssuer), testpki.WithFulcio(12, fulcioRepo)).Cert
}

// pushBundle attaches a Sigstore bundle v0.3 to subject as an OCI 1.1
// referrer (and in the referrers tag schema where the registry has no
// referrers API): a DSSE in-toto statement of predicateType, with leaf's
// certificate, or the key hint bundleHint when leaf is nil.
func pushBundle(t *testing.T, reg *testenv.Registry, repo string, subject ocispec.Descriptor, predicateType string, leaf *x509.Certificate) {
	t.Helper()
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	statement, _ := json.Marshal(map[string]any{"_type": "https://in-toto.io/Statement/v1", "predicateType": predicateType, "predicate": map[string]any{},
		"subject": []any{map[string]any{"digest": map[string]string{"sha256": subject.Digest.Encoded()}}}})
	vm := map[string]any{"publicKey": map[string]string{"hint": bundleHint}}
	if leaf != nil {
		vm = map[string]any{"certificate": map[string]any{"rawBytes": leaf.Raw}}
	}
	bundle, _ := json.Marshal(map[string]any{"mediaType": bundleType, "verificationMaterial": vm,
		"dsseEnvelope": map[string]any{"payload": statement, "payloadType": "application/vnd.in-toto+json", "signatures": []any{map[string]string{"sig": "AAAA"}}}})
	layer := testenv.PutBlob(t, reg, repo, bundleType, bundle)
	empty := testenv.PutBlob(t, reg, repo, ocispec.MediaTypeEmptyJSON, []byte("{}"))
	annotations := map[string]string{"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": predicateType}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, ArtifactType: bundleType,
		Config: empty, Layers: []ocispec.Descriptor{layer}, Subject: &subject, Annotations: annotations})
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: godigest.FromBytes(m), Size: int64(len(m)), ArtifactType: bundleType, Annotations: annotations}
	testenv.PutManifest(t, reg, repo, desc.Digest.String(), desc.MediaType, m)
	if !reg.Referrers {
		tag := "sha256-" + subject.Digest.Encoded()
		var idx ocispec.Index
		if raw, ok := testenv.TryGetManifest(t, reg, repo, tag); ok {
			json.Unmarshal(raw, &idx)
		}
		idx.SchemaVersion, idx.MediaType = 2, ocispec.MediaTypeImageIndex
		idx.Manifests = append(idx.Manifests, desc)
		data, _ := json.Marshal(idx)
		testenv.PutManifest(t, reg, repo, tag, ocispec.MediaTypeImageIndex, data)
	}
}

// moveSignature copies the notation signature of from onto to: the same
// envelope, a manifest whose subject is to (what an attacker who can push
// does to reuse a signature).
func (w *scanWorld) moveSignature(t *testing.T, reg *testenv.Registry, repo string, from, to ocispec.Descriptor) {
	t.Helper()
	sig := w.findSignature(t, reg, repo, from)
	raw, mt := testenv.GetManifest(t, reg, repo, sig.Digest.String())
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["subject"] = map[string]any{"mediaType": to.MediaType, "digest": to.Digest.String(), "size": to.Size}
	data, _ := json.Marshal(m)
	moved := ocispec.Descriptor{MediaType: mt, Digest: godigest.FromBytes(data), Size: int64(len(data)), ArtifactType: sig.ArtifactType}
	testenv.PutManifest(t, reg, repo, moved.Digest.String(), mt, data)
	if !reg.Referrers {
		idx, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{moved}, Versioned: specs.Versioned{SchemaVersion: 2}})
		testenv.PutManifest(t, reg, repo, "sha256-"+to.Digest.Encoded(), ocispec.MediaTypeImageIndex, idx)
	}
}

// findSignature returns the notation signature manifest of d.
func (w *scanWorld) findSignature(t *testing.T, reg *testenv.Registry, repo string, d ocispec.Descriptor) ocispec.Descriptor {
	t.Helper()
	var raw []byte
	if reg.Referrers {
		raw = testenv.GetReferrers(t, reg, repo, d.Digest.String())
	} else {
		raw, _ = testenv.GetManifest(t, reg, repo, "sha256-"+d.Digest.Encoded())
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("referrers of %s: %s (%v)", d.Digest, raw, err)
	}
	return idx.Manifests[0]
}

// scanPolicy writes the policy of the fixture: skip for skip/app, strict
// with the fixture's trust store for the rest.
func (w *scanWorld) scanPolicy(t *testing.T, host string) string {
	t.Helper()
	doc := map[string]any{"version": "1.0", "trustPolicies": []any{
		map[string]any{"name": "skip", "registryScopes": []string{host + "/skip/app"}, "signatureVerification": map[string]string{"level": "skip"}},
		map[string]any{"name": "all", "registryScopes": []string{"*"}, "signatureVerification": map[string]string{"level": "strict"},
			"trustStores": []string{"ca:cmd"}, "trustedIdentities": []string{"*"}},
	}}
	b, _ := json.Marshal(doc)
	return testpki.WriteFile(t, w.policies, "scan-policy.json", b, 0o644)
}

func formatsOf(r *scan.Record) []string {
	var out []string
	for _, s := range r.Signatures {
		out = append(out, s.Role+":"+s.Format)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// TestScanFixture scans registries with and without the referrers API
// holding every kind of signature, and checks each record's classification
// and that its verdict is keyward verify's.
func TestScanFixture(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) *testenv.Registry
	}{{"olareg", testenv.StartOlareg}, {"distribution", testenv.StartDistribution}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newScanWorld(t)
			reg := tc.start(t)
			wants, children, orphanRepos := w.populate(t, reg)
			policyFile := w.scanPolicy(t, reg.Host)
			env := map[string]string{"HOME": t.TempDir()}
			status, out, errOut := runScanCmd(t, env, append([]string{"--plain-http", "--policy", policyFile, "--trust-store", w.store, "-o", "json"}, targets(reg, wants, orphanRepos)...)...)
			if status != exitFailure {
				t.Errorf("status %d, want %d (artifacts fail the policy); stderr:\n%s", status, exitFailure, errOut)
			}
			recs := decodeRecords(t, out)
			if len(recs) == 0 {
				t.Fatalf("no record; stderr:\n%s", errOut)
			}
			byRepo := map[string][]*scan.Record{}
			for i := range recs {
				byRepo[recs[i].Repository] = append(byRepo[recs[i].Repository], &recs[i])
			}
			for repo, wt := range wants {
				var tagged *scan.Record
				for _, r := range byRepo[repo] {
					if r.Kind == scan.KindArtifact && slices.Contains(r.Tags, "v1") {
						tagged = r
					}
				}
				if tagged == nil {
					t.Errorf("%s: no record of the tagged artifact; records: %+v", repo, byRepo[repo])
					continue
				}
				got := want{status: tagged.Status, formats: formatsOf(tagged)}
				if v := tagged.Verification; v != nil {
					got.verdict = v.Verdict
					if v.Verdict != scan.VerdictVerified {
						got.failed = v.FailedCheck
					}
				}
				if got.status != wt.status || got.verdict != wt.verdict || !slices.Equal(got.formats, wt.formats) || got.failed != wt.failed {
					t.Errorf("%s: got %+v, want %+v\nerrors %v findings %v", repo, got, wt, tagged.Errors, tagged.Findings)
				}
				if wt.verdict == scan.VerdictVerified {
					checkVerifiedIdentity(t, repo, tagged)
				}
				if slices.Contains(wt.formats, "signature:notation") && repo != "app/untrusted" {
					checkNotationIdentity(t, repo, tagged)
				}
			}
			// The index's platform manifests are records of their own.
			for _, c := range children {
				found := false
				for _, r := range byRepo["app/index"] {
					if r.Digest == c.Digest.String() {
						found = true
						if r.Platform != c.Platform.OS+"/"+c.Platform.Architecture || r.Index == "" || r.Status != scan.StatusUnsigned {
							t.Errorf("platform manifest %s: platform %q index %q status %q", c.Digest, r.Platform, r.Index, r.Status)
						}
					}
				}
				if !found {
					t.Errorf("platform manifest %s of app/index not reported", c.Digest)
				}
			}
			// The skip statement's tag is counted, not fetched.
			if rs := byRepo["skip/app"]; len(rs) != 1 || rs[0].Kind != scan.KindSkipped || rs[0].Verification == nil || rs[0].Verification.Verdict != scan.VerdictSkipped {
				t.Errorf("skip/app: %+v", rs)
			}
			for _, repo := range orphanRepos {
				n := 0
				for _, r := range byRepo[repo] {
					if r.Kind == scan.KindOrphan && r.Status == scan.StatusOrphaned && r.Subject != "" {
						n++
					}
					if r.Kind == scan.KindArtifact {
						t.Errorf("%s: artifact record for a deleted artifact: %+v", repo, r)
					}
				}
				if n == 0 {
					t.Errorf("%s: no orphan record; records %+v", repo, byRepo[repo])
				}
			}
			if w.cosign != "" {
				checkCosign(t, byRepo)
				checkCosignKey(t, w, env, reg)
			}
			checkIdentityPastes(t, w, env, byRepo["app/jws"])
			checkSigstore(t, byRepo)
			compareWithVerify(t, env, policyFile, w.store, recs)
		})
	}
}

// TestScanCosignTool fails in CI when cosign is missing, which
// TestScanFixture needs for its cosign artifacts (it checks the rest
// without).
func TestScanCosignTool(t *testing.T) {
	bin := filepath.Join(testenv.ToolsDir(t), "cosign")
	if _, err := os.Stat(bin); err != nil {
		testenv.Missing(t, "cosign is not in %s: run scripts/tools-cosign.sh (make tools)", testenv.ToolsDir(t))
	}
}

func checkVerifiedIdentity(t *testing.T, repo string, r *scan.Record) {
	t.Helper()
	n := 0
	for _, s := range r.Signatures {
		for _, id := range s.Identities {
			if id.Verified != s.Verified {
				t.Errorf("%s: identity verified %v on a signature verified %v", repo, id.Verified, s.Verified)
			}
			if id.Verified {
				n++
			}
		}
	}
	if n == 0 {
		t.Errorf("%s: verified, but no identity is marked verified", repo)
	}
}

func checkNotationIdentity(t *testing.T, repo string, r *scan.Record) {
	t.Helper()
	for _, s := range r.Signatures {
		if s.Format != scan.FormatNotation {
			continue
		}
		if len(s.Identities) != 1 {
			t.Errorf("%s: notation signature with %d identities; findings %v", repo, len(s.Identities), s.Findings)
			continue
		}
		id := s.Identities[0]
		if !strings.HasPrefix(id.X509Subject, "x509.subject: ") || len(id.SHA256) != 64 || id.SPKISHA256 == "" {
			t.Errorf("%s: identity %+v", repo, id)
		}
		if !slices.Contains(id.TrustedIdentities, id.X509Subject) || !slices.ContainsFunc(id.TrustedIdentities, func(s string) bool { return strings.HasPrefix(s, "keyward: spki.sha256=") }) {
			t.Errorf("%s: trustedIdentities %v", repo, id.TrustedIdentities)
		}
	}
}

// checkIdentityPastes checks that the x509.subject identity the scan
// reports, pasted into a trust policy, is what verifies the artifact.
func checkIdentityPastes(t *testing.T, w *scanWorld, env map[string]string, recs []*scan.Record) {
	t.Helper()
	if len(recs) != 1 || len(recs[0].Signatures) != 1 || len(recs[0].Signatures[0].Identities) != 1 {
		t.Fatalf("app/jws: want one record with one identity, got %+v", recs)
	}
	r, id := recs[0], recs[0].Signatures[0].Identities[0]
	for _, tc := range []struct {
		identity string
		status   int
	}{{id.X509Subject, exitOK}, {"x509.subject: C=US, ST=WA, O=someone else", exitFailure}} {
		p := w.policy(t, "paste", "*", "strict", tc.identity)
		if status, out, errOut := runVerifyCmd(t, env, "", "--plain-http", "--policy", p, "--trust-store", w.store, r.Reference); status != tc.status {
			t.Errorf("identity %q: keyward verify status %d, want %d\n%s%s", tc.identity, status, tc.status, out, errOut)
		}
	}
}

// checkSigstore checks the signers read from Sigstore bundles.
func checkSigstore(t *testing.T, byRepo map[string][]*scan.Record) {
	t.Helper()
	for _, r := range byRepo["sigstore/keyed"] {
		if len(r.Signatures) != 1 || len(r.Signatures[0].Identities) != 1 || r.Signatures[0].Identities[0].KeyHint != bundleHint {
			t.Errorf("sigstore/keyed: %+v", r.Signatures)
		}
	}
	for _, r := range byRepo["sigstore/keyless"] {
		for _, s := range r.Signatures {
			if len(s.Identities) != 1 {
				t.Errorf("sigstore/keyless: identities %+v, findings %v", s.Identities, s.Findings)
				continue
			}
			id := s.Identities[0]
			if !slices.Equal(id.SANs, []string{"uri:" + fulcioSAN}) || id.OIDCIssuer != fulcioIssuer || id.Fulcio["source-repository-uri"] != fulcioRepo || id.Verified {
				t.Errorf("sigstore/keyless: identity %+v", id)
			}
			if want := "keyward: oidc.issuer=" + fulcioIssuer + " san.uri=" + fulcioSAN; !slices.Contains(id.TrustedIdentities, want) {
				t.Errorf("sigstore/keyless: trustedIdentities %v lack %q", id.TrustedIdentities, want)
			}
			if s.SignedDigest != r.Digest {
				t.Errorf("sigstore/keyless: the statement names %q, the artifact is %s", s.SignedDigest, r.Digest)
			}
		}
	}
}

// checkCosignKey scans the key-signed repository again with the public
// key (the signature verifies: the key is the identity, verified) and with
// another key (nothing verified).
func checkCosignKey(t *testing.T, w *scanWorld, env map[string]string, reg *testenv.Registry) {
	t.Helper()
	pub, err := os.ReadFile(filepath.Join(w.cosignDir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pub)
	sum := sha256.Sum256(blk.Bytes)
	hint := base64.StdEncoding.EncodeToString(sum[:])
	other := testpki.Key(t, "EC-256", "other cosign key")
	der, _ := x509.MarshalPKIXPublicKey(other.Public())
	otherFile := testpki.WriteFile(t, t.TempDir(), "other.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	for _, tc := range []struct {
		key      string
		verified bool
	}{{filepath.Join(w.cosignDir, "cosign.pub"), true}, {otherFile, false}} {
		_, out, errOut := runScanCmd(t, env, "--plain-http", "-o", "json", "--cosign-key", tc.key, reg.Host+"/cosign/keyed", reg.Host+"/cosign/oci11")
		recs := decodeRecords(t, out)
		if len(recs) != 2 {
			t.Fatalf("--cosign-key %s: %d records\n%s", tc.key, len(recs), errOut)
		}
		for _, r := range recs {
			s := r.Signatures[0]
			switch {
			case tc.verified && (len(s.Identities) != 1 || s.Identities[0].KeyHint != hint || !s.Identities[0].Verified || !s.Verified):
				t.Errorf("%s with the signing key: %+v", r.Repository, s)
			case !tc.verified && (len(s.Identities) != 0 || s.Verified):
				t.Errorf("%s with another key: %+v", r.Repository, s)
			}
		}
	}
}

func checkCosign(t *testing.T, byRepo map[string][]*scan.Record) {
	t.Helper()
	for _, repo := range []string{"cosign/keyed", "cosign/oci11"} {
		for _, r := range byRepo[repo] {
			for _, s := range r.Signatures {
				if s.SignedDigest != r.Digest {
					t.Errorf("%s: payload signs %q, the artifact is %s", repo, s.SignedDigest, r.Digest)
				}
				if !strings.HasSuffix(s.DockerReference, repo) {
					t.Errorf("%s: docker-reference %q", repo, s.DockerReference)
				}
				if s.Verified {
					t.Errorf("%s: a cosign signature marked verified", repo)
				}
			}
		}
	}
	children := 0
	for _, r := range byRepo["cosign/index"] {
		if r.Platform == "" {
			continue
		}
		children++
		if r.Status != scan.StatusSigned || len(r.Signatures) != 1 || r.Signatures[0].SignedDigest != r.Digest || r.Verification.Verdict != scan.VerdictNotVerifiable {
			t.Errorf("cosign/index platform manifest %s: %+v", r.Platform, r)
		}
	}
	t.Logf("cosign/index: %d platform manifests", children)
	if children != 2 {
		t.Errorf("cosign/index: %d platform manifests reported, want 2", children)
	}
	for _, r := range byRepo["cosign/keyed"] {
		for _, s := range r.Signatures {
			if s.Source != scan.SourceCosignTag || !strings.HasSuffix(s.Tag, ".sig") {
				t.Errorf("cosign/keyed: source %q tag %q", s.Source, s.Tag)
			}
		}
	}
	for _, r := range byRepo["cosign/oci11"] {
		for _, s := range r.Signatures {
			if s.Source != scan.SourceReferrers || s.ArtifactType != "application/vnd.dev.cosign.artifact.sig.v1+json" {
				t.Errorf("cosign/oci11: source %q artifactType %q", s.Source, s.ArtifactType)
			}
		}
	}
	for _, r := range byRepo["cosign/attest"] {
		for _, s := range r.Signatures {
			if s.PredicateType != "https://slsa.dev/provenance/v0.2" {
				t.Errorf("cosign/attest: predicateType %q", s.PredicateType)
			}
		}
	}
}

// compareWithVerify runs keyward verify on every artifact the scan
// verified and checks that both give the same verdict.
func compareWithVerify(t *testing.T, env map[string]string, policyFile, store string, recs []scan.Record) {
	t.Helper()
	var refs []string
	byRef := map[string]*scan.Record{}
	for i := range recs {
		r := &recs[i]
		if r.Verification == nil {
			continue
		}
		refs = append(refs, r.Reference)
		byRef[r.Reference] = r
	}
	_, out, _ := runVerifyCmd(t, env, "", append([]string{"--plain-http", "--policy", policyFile, "--trust-store", store, "-o", "json"}, refs...)...)
	results := decodeLines(t, out)
	if len(results) != len(refs) {
		t.Fatalf("keyward verify gave %d results for %d references", len(results), len(refs))
	}
	for _, v := range results {
		r := byRef[v.Reference]
		if r == nil {
			t.Errorf("keyward verify result for %s, which the scan did not report", v.Reference)
			continue
		}
		if r.Verification.Verified != v.Verified || r.Verification.Statement != v.Statement {
			t.Errorf("%s: scan says verified=%v statement %q, keyward verify verified=%v statement %q",
				v.Reference, r.Verification.Verified, r.Verification.Statement, v.Verified, v.Statement)
		}
		if (v.Error == nil) != (r.Verification.Error == nil) || (v.Error != nil && v.Error.Kind != r.Verification.Error.Kind) {
			t.Errorf("%s: scan error %+v, keyward verify error %+v", v.Reference, r.Verification.Error, v.Error)
		}
	}
}
