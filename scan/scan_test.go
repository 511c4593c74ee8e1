package scan

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestAttachmentTag(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		tag, subject, suffix string
		ok                   bool
	}{
		{"sha256-" + hex + ".sig", "sha256:" + hex, "sig", true},
		{"sha256-" + hex + ".att", "sha256:" + hex, "att", true},
		{"sha256-" + hex + ".sbom", "sha256:" + hex, "sbom", true},
		{"sha256-" + hex, "sha256:" + hex, "", true},
		{"sha512-" + hex + hex + ".sig", "sha512:" + hex + hex, "sig", true},
		{"sha512-" + hex + ".sig", "", "", false}, // sha512 with a sha256-long hex
		{"sha256-" + hex + ".sigx", "", "", false},
		{"sha256-" + strings.ToUpper(hex), "", "", false},
		{"v1", "", "", false},
		{"sha256-abc.sig", "", "", false},
	} {
		subject, suffix, ok := attachmentTag(tc.tag)
		if subject != tc.subject || suffix != tc.suffix || ok != tc.ok {
			t.Errorf("attachmentTag(%q) = %q, %q, %v; want %q, %q, %v", tc.tag, subject, suffix, ok, tc.subject, tc.suffix, tc.ok)
		}
	}
}

func TestClassifyReferrer(t *testing.T) {
	for _, tc := range []struct {
		artifactType string
		annotations  map[string]string
		role, format string
	}{
		{"application/vnd.cncf.notary.signature", nil, RoleSignature, FormatNotation},
		{"application/vnd.dev.sigstore.bundle.v0.3+json", map[string]string{annBundlePredicate: predicateCosignSign}, RoleSignature, FormatSigstoreBundle},
		{"application/vnd.dev.sigstore.bundle.v0.3+json", map[string]string{annBundlePredicate: "https://slsa.dev/provenance/v1"}, RoleAttestation, FormatSigstoreBundle},
		{"application/vnd.dev.sigstore.bundle+json;version=0.2", nil, RoleSignature, FormatSigstoreBundle},
		{"application/vnd.dev.cosign.artifact.sig.v1+json", nil, RoleSignature, FormatSimpleSigning},
		{"application/vnd.in-toto+json", nil, RoleAttestation, FormatDSSE},
		{"application/vnd.dev.cosign.artifact.sbom.v1+json", nil, RoleSBOM, FormatSBOM},
		{"application/spdx+json", nil, RoleSBOM, FormatSBOM},
		{"application/vnd.example.thing", nil, RoleOther, FormatUnknown},
	} {
		role, format := classifyReferrer(tc.artifactType, tc.annotations)
		if role != tc.role || format != tc.format {
			t.Errorf("classifyReferrer(%q, %v) = %s, %s; want %s, %s", tc.artifactType, tc.annotations, role, format, tc.role, tc.format)
		}
	}
}

func TestReadSimpleSigning(t *testing.T) {
	payload := `{"critical":{"identity":{"docker-reference":"r.example/app"},"image":{"docker-manifest-digest":"sha256:aa"},"type":"cosign container image signature"},"optional":{"creator":"containers/image 5.0"}}`
	s := &Signature{}
	readSimpleSigning(s, []byte(payload), "sha256:aa")
	if s.SignedDigest != "sha256:aa" || s.DockerReference != "r.example/app" || s.Creator != "containers/image 5.0" || len(s.Findings) != 0 {
		t.Errorf("%+v", s)
	}
	s = &Signature{}
	readSimpleSigning(s, []byte(payload), "sha256:bb")
	if len(s.Findings) != 1 || !strings.Contains(s.Findings[0], "not the artifact sha256:bb") {
		t.Errorf("a payload signing another digest: findings %v", s.Findings)
	}
	s = &Signature{}
	readSimpleSigning(s, []byte(`{"critical":{"type":"other"}}`), "")
	if len(s.Findings) != 1 || !strings.Contains(s.Findings[0], "critical.type") {
		t.Errorf("another critical.type: findings %v", s.Findings)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", defaultRetryAfter},
		{"3", 3 * time.Second},
		{"0", 0},
		{"100000", MaxRetryAfter},
		{"-5", defaultRetryAfter},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-10 * time.Second).Format(http.TimeFormat), 0},
		{"soon", defaultRetryAfter},
	} {
		if got := retryAfter(tc.v, now); got != tc.want {
			t.Errorf("retryAfter(%q) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

// TestPauseTransport: after a 429 with Retry-After: 1, the next request to
// the host waits for the second to pass.
func TestPauseTransport(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	p := NewPauseTransport(http.DefaultTransport)
	c := &http.Client{Transport: p}
	resp, err := c.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	start := time.Now()
	resp, err = c.Get(srv.URL)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%v %v", resp, err)
	}
	resp.Body.Close()
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Errorf("the request after a 429 went out after %s, not after Retry-After", waited)
	}
	if sent, limited := p.Requests(); sent != 2 || limited != 1 {
		t.Errorf("Requests() = %d, %d", sent, limited)
	}
}

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Target
		wantErr bool
	}{
		{"r.example", Target{Registry: "r.example"}, false},
		{"r.example:5000/team/app", Target{Registry: "r.example:5000", Repository: "team/app"}, false},
		{"r.example/team/", Target{Registry: "r.example", Repository: "team"}, false},
		{"r.example/app:v1", Target{}, true},
		{"r.example/app@sha256:00", Target{}, true},
		{"r.example/App", Target{}, true},
		{"", Target{}, true},
	} {
		got, err := ParseTarget(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
}

// TestStateCutLine: the line a killed run cut short is dropped and
// overwritten; complete lines are replayed.
func TestStateCutLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	st, err := OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{Version: RecordVersion, Kind: KindArtifact, Registry: "r.example", Repository: "app", Reference: "r.example/app@sha256:aa",
		Digest: "sha256:aa", Tags: []string{"v1"}, Status: StatusUnsigned, Signatures: []*Signature{}}
	if err := st.append(r); err != nil {
		t.Fatal(err)
	}
	st.Close()
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"version":"1","kind":"artif`)
	f.Close()

	st, err = OpenState(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var replayed []*Record
	st.replay(func(r *Record) { replayed = append(replayed, r) })
	if len(replayed) != 1 || replayed[0].Reference != r.Reference {
		t.Errorf("replayed %+v", replayed)
	}
	if !st.finished(r.key()) || st.digestOfTag("r.example/app", "v1") != "sha256:aa" || !st.hasDigest("r.example/app", "sha256:aa") {
		t.Error("the finished record is not remembered")
	}
	r2 := *r
	r2.Reference, r2.Digest = "r.example/app@sha256:bb", "sha256:bb"
	if err := st.append(&r2); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if n := strings.Count(string(data), "\n"); n != 2 || strings.Contains(string(data), `"artif`+"{") || !strings.HasSuffix(string(data), "}\n") {
		t.Errorf("state file after the cut line:\n%s", data)
	}
	// A broken line in the middle is an error that names it.
	os.WriteFile(path, []byte("not json\n"+string(data)), 0o600)
	if _, err := OpenState(path); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("OpenState on a corrupt file: %v", err)
	}
}

// TestCosignLayerIdentity: the signer of a cosign layer from its
// certificate annotation, else from the key of the Rekor entry in its
// bundle annotation, else none (with a finding).
func TestCosignLayerIdentity(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	entry, _ := json.Marshal(map[string]any{"spec": map[string]any{"signature": map[string]any{"publicKey": map[string]string{"content": base64.StdEncoding.EncodeToString(pubPEM)}}}})
	bundle, _ := json.Marshal(map[string]any{"SignedEntryTimestamp": "AA==", "Payload": map[string]any{"body": base64.StdEncoding.EncodeToString(entry), "integratedTime": 1, "logIndex": 1, "logID": "00"}})
	id, notes := cosignLayerIdentity(map[string]string{annCosignRekor: string(bundle)})
	if id == nil || id.KeyHint != keyHint(der) || id.Verified || len(notes) != 0 {
		t.Errorf("Rekor entry: %+v %v", id, notes)
	}
	id, notes = cosignLayerIdentity(map[string]string{annCosignSignature: "MEUC"})
	if id != nil || len(notes) != 1 || !strings.Contains(notes[0], "key-based") {
		t.Errorf("no key material: %+v %v", id, notes)
	}
	id, notes = cosignLayerIdentity(map[string]string{annCosignCert: "not a certificate"})
	if id != nil || len(notes) != 1 || !strings.Contains(notes[0], "certificate annotation") {
		t.Errorf("bad certificate: %+v %v", id, notes)
	}
	// A cosign key verifies the signature it made, and no other.
	k, err := ParseCosignKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"critical":{}}`)
	sum := sha256.Sum256(payload)
	sig, _ := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if !k.verify(payload, base64.StdEncoding.EncodeToString(sig)) || k.verify([]byte("other"), base64.StdEncoding.EncodeToString(sig)) || k.verify(payload, "!!") {
		t.Error("CosignKey.verify")
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"=HYPERLINK(1)": "'=HYPERLINK(1)", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\tx": "'\tx", "sha256:ab": "sha256:ab", "": ""} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadBundleSubjects: an in-toto statement may name several subjects
// (cosign attest-blob, SLSA provenance of a multi-image build); the one
// that is the artifact is the signed digest, and no finding says the
// bundle signs something else.
func TestReadBundleSubjects(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	statement, _ := json.Marshal(map[string]any{"predicateType": "https://slsa.dev/provenance/v1", "subject": []any{
		map[string]any{"digest": map[string]string{"sha256": strings.Repeat("a", 64)}},
		map[string]any{"digest": map[string]string{"sha256": strings.Repeat("b", 64)}}}})
	bundle, _ := json.Marshal(map[string]any{"verificationMaterial": map[string]any{"publicKey": map[string]string{"hint": "x"}},
		"dsseEnvelope": map[string]any{"payload": statement, "payloadType": "application/vnd.in-toto+json"}})
	for _, subject := range []string{a, b} {
		s := &Signature{}
		readBundle(s, bundle, subject)
		if s.SignedDigest != subject || slices.ContainsFunc(s.Findings, func(f string) bool { return strings.Contains(f, "not the artifact") }) {
			t.Errorf("subject %s: signed digest %s, findings %v", subject, s.SignedDigest, s.Findings)
		}
	}
	s := &Signature{}
	readBundle(s, bundle, "sha256:"+strings.Repeat("c", 64))
	if !slices.ContainsFunc(s.Findings, func(f string) bool { return strings.Contains(f, "not the artifact") }) {
		t.Errorf("a bundle naming other subjects only: findings %v", s.Findings)
	}
}

// TestPauseTransportBudget: a server that answers 429 forever is paused
// for until the pauses add up to MaxWait; every request after that fails
// at once with a RateLimitBudgetError, without reaching the server.
func TestPauseTransportBudget(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	p := NewPauseTransport(http.DefaultTransport)
	p.MaxWait = 350 * time.Millisecond
	start := time.Now()
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		var resp *http.Response
		if resp, err = p.RoundTrip(req); err == nil {
			resp.Body.Close()
		}
	}
	var budget *RateLimitBudgetError
	if !errors.As(err, &budget) || budget.Budget != p.MaxWait {
		t.Fatalf("after %d requests: error %v, want a RateLimitBudgetError", hits.Load(), err)
	}
	// Retry-After: 0 still pauses minPause: 4 pauses pass 350 ms.
	if n := hits.Load(); n != 4 {
		t.Errorf("%d requests reached the server, want 4", n)
	}
	if d := time.Since(start); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("gave up after %s, want about 300 ms (three pauses)", d)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := p.RoundTrip(req); !errors.As(err, &budget) || hits.Load() != 4 {
		t.Errorf("a request after the budget: %v, %d requests reached the server", err, hits.Load())
	}
}
