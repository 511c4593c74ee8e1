package verify_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-go/dir"
	nplugin "github.com/notaryproject/notation-go/plugin"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	ntruststore "github.com/notaryproject/notation-go/verifier/truststore"
	"github.com/notaryproject/tspclient-go"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/veraison/go-cose"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

const (
	mtJWS  = "application/jose+json"
	mtCOSE = "application/cose"
	// scope is the registry scope of every test statement; references are
	// scope@digest.
	scope = "registry.keyward.test/app"
	// pluginName is the name the test plugin is installed under.
	pluginName = "kwtest"
)

// fixture is a PKI with responders, trust stores and a plugin directory,
// laid out on disk as notation reads them, shared by the tests of one
// test function.
type fixture struct {
	now       time.Time
	root      *testpki.Cert // main CA root; in ca:main and signingAuthority:sa
	inter     *testpki.Cert
	otherRoot *testpki.Cert // in ca:other only
	ocsp      *testpki.OCSPResponder
	ocspDown  *testpki.OCSPResponder
	crl       *testpki.CRLServer
	tsa       *testpki.TSA // root in tsa:tsa
	otherTSA  *testpki.TSA // root in tsa:othertsa
	revTSA    *testpki.TSA // root in tsa:revtsa; its leaf is revoked by OCSP

	configDir string // {NOTATION_CONFIG}: truststore/x509/<type>/<name>
	pluginDir string // {NOTATION_LIBEXEC}/plugins
	artifact  ocispec.Descriptor
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Now()
	long := testpki.WithValidity(now.Add(-30*24*time.Hour), now.Add(30*24*time.Hour))
	f := &fixture{now: now}
	f.root = testpki.Root(t, "verify-root", long)
	f.inter = f.root.Intermediate(t, "verify-intermediate", long)
	f.otherRoot = testpki.Root(t, "verify-other-root", long)
	f.ocsp = testpki.StartOCSP(t, f.inter)
	f.ocspDown = testpki.StartOCSP(t, f.inter)
	f.ocspDown.SetDown(true)
	f.crl = testpki.StartCRL(t, f.inter)
	f.tsa = testpki.StartTSA(t)
	f.otherTSA = testpki.StartTSA(t)
	tsaRoot := testpki.Root(t, "verify-tsa-revoked-root", long)
	tsaOCSP := testpki.StartOCSP(t, tsaRoot)
	f.revTSA = testpki.StartTSA(t, testpki.TSARoot(tsaRoot), testpki.TSALeafOptions(testpki.WithOCSP(tsaOCSP.URL())))
	tsaOCSP.Revoke(f.revTSA.Leaf().Cert.SerialNumber, now.Add(-time.Hour))

	f.configDir = t.TempDir()
	f.addStore(t, "ca", "main", f.root.Cert)
	f.addStore(t, "ca", "other", f.otherRoot.Cert)
	f.addStore(t, "signingAuthority", "sa", f.root.Cert)
	f.addStore(t, "tsa", "tsa", f.tsa.Root().Cert)
	f.addStore(t, "tsa", "othertsa", f.otherTSA.Root().Cert)
	f.addStore(t, "tsa", "revtsa", tsaRoot.Cert)
	f.pluginDir = installTestPlugin(t, pluginName)
	f.artifact = ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest,
		Digest:    digest.FromString("the artifact keyward verifies"),
		Size:      1234,
	}
	return f
}

func (f *fixture) addStore(t testing.TB, typ, name string, certs ...*x509.Certificate) {
	t.Helper()
	d := filepath.Join(f.configDir, "truststore", "x509", typ, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, d, name+".pem", testpki.CertsPEM(certs...), 0o644)
}

// reference is the artifact reference statements are selected for.
func (f *fixture) reference() string { return scope + "@" + f.artifact.Digest.String() }

// chain returns leaf, intermediate and root.
func (f *fixture) chain(leaf *testpki.Cert) []*x509.Certificate {
	return testpki.Chain(leaf, f.inter, f.root)
}

// signSpec describes an envelope to make.
type signSpec struct {
	mediaType   string
	leaf        *testpki.Cert
	chain       []*x509.Certificate // default leaf, intermediate, root
	desc        *ocispec.Descriptor // default the fixture's artifact
	annotations map[string]string
	signingTime time.Time // default now
	expiry      time.Time
	scheme      signature.SigningScheme
	ext         []signature.Attribute
	tsa         *testpki.TSA
	tsaTime     time.Time // when the TSA stamps (default its clock)
}

// sign makes an envelope with notation-core-go, as notation's signer does.
func (f *fixture) sign(t testing.TB, s signSpec) []byte {
	t.Helper()
	if s.mediaType == "" {
		s.mediaType = mtJWS
	}
	if s.chain == nil {
		s.chain = f.chain(s.leaf)
	}
	desc := f.artifact
	if s.desc != nil {
		desc = *s.desc
	}
	desc.Annotations = s.annotations
	payload, err := json.Marshal(map[string]any{"targetArtifact": desc})
	if err != nil {
		t.Fatal(err)
	}
	if s.signingTime.IsZero() {
		s.signingTime = time.Now()
	}
	if s.scheme == "" {
		s.scheme = signature.SigningSchemeX509
	}
	signer, err := signature.NewLocalSigner(s.chain, s.leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signature.NewEnvelope(s.mediaType)
	if err != nil {
		t.Fatal(err)
	}
	req := &signature.SignRequest{
		Payload:                  signature.Payload{ContentType: verify.PayloadTypeV1, Content: payload},
		Signer:                   signer,
		SigningTime:              s.signingTime,
		Expiry:                   s.expiry,
		ExtendedSignedAttributes: s.ext,
		SigningAgent:             "keyward-test/1.0",
		SigningScheme:            s.scheme,
	}
	if s.tsa != nil {
		ts, err := tspclient.NewHTTPTimestamper(nil, s.tsa.URL())
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AddCert(s.tsa.Root().Cert)
		req.Timestamper, req.TSARootCAs = ts, roots
		if !s.tsaTime.IsZero() {
			at := s.tsaTime
			s.tsa.SetGenTime(func() time.Time { return at })
			defer s.tsa.SetGenTime(nil)
		}
	}
	b, err := env.Sign(req)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return b
}

// editJWS changes a JWS envelope's JSON; the unprotected header and the
// signature are outside what is signed.
func editJWS(t testing.TB, b []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// editCOSE changes a COSE_Sign1 envelope, keeping the protected header's
// bytes.
func editCOSE(t testing.TB, b []byte, f func(m *cose.Sign1Message)) []byte {
	t.Helper()
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(b); err != nil {
		t.Fatal(err)
	}
	f(&m)
	out, err := m.MarshalCBOR()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flipSignature flips a bit of the signature value.
func flipSignature(t testing.TB, mediaType string, b []byte) []byte {
	t.Helper()
	if mediaType == mtCOSE {
		return editCOSE(t, b, func(m *cose.Sign1Message) { m.Signature[len(m.Signature)/2] ^= 1 })
	}
	return editJWS(t, b, func(m map[string]any) {
		sig, err := base64.RawURLEncoding.DecodeString(m["signature"].(string))
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 1
		m["signature"] = base64.RawURLEncoding.EncodeToString(sig)
	})
}

// replaceChain replaces the envelope's certificate chain.
func replaceChain(t testing.TB, mediaType string, b []byte, chain []*x509.Certificate) []byte {
	t.Helper()
	if mediaType == mtCOSE {
		return editCOSE(t, b, func(m *cose.Sign1Message) {
			ders := make([]any, len(chain))
			for i, c := range chain {
				ders[i] = c.Raw
			}
			m.Headers.RawUnprotected = nil
			m.Headers.Unprotected[cose.HeaderLabelX5Chain] = ders
		})
	}
	return editJWS(t, b, func(m map[string]any) {
		x5c := make([]any, len(chain))
		for i, c := range chain {
			x5c[i] = base64.StdEncoding.EncodeToString(c.Raw)
		}
		m["header"].(map[string]any)["x5c"] = x5c
	})
}

// variant is a level with overrides.
type variant struct {
	name      string
	level     string
	overrides map[string]string
}

var variants = []variant{
	{"strict", "strict", nil},
	{"permissive", "permissive", nil},
	{"audit", "audit", nil},
	{"skip", "skip", nil},
	{"strict+revocation=skip", "strict", map[string]string{"revocation": "skip"}},
	{"strict+revocation=log", "strict", map[string]string{"revocation": "log"}},
	{"strict+expiry,timestamp=log", "strict", map[string]string{"expiry": "log", "authenticTimestamp": "log"}},
	{"audit+authenticity=enforce", "audit", map[string]string{"authenticity": "enforce"}},
	{"permissive+timestamp,revocation=enforce", "permissive", map[string]string{"authenticTimestamp": "enforce", "revocation": "enforce"}},
}

// policyDocument is a trust policy with one statement for scope.
func policyDocument(v variant, stores, identities []string, verifyTimestamp string) []byte {
	sv := map[string]any{"level": v.level}
	if len(v.overrides) > 0 {
		sv["override"] = v.overrides
	}
	if verifyTimestamp != "" {
		sv["verifyTimestamp"] = verifyTimestamp
	}
	st := map[string]any{
		"name":                  "test-statement",
		"registryScopes":        []string{scope},
		"signatureVerification": sv,
	}
	if v.level != "skip" {
		st["trustStores"] = stores
		st["trustedIdentities"] = identities
	}
	doc, _ := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{st}})
	return doc
}

// keywardStatement parses a document with package policy and selects the
// statement for the fixture's artifact.
func (f *fixture) keywardStatement(t testing.TB, doc []byte) *policy.Statement {
	t.Helper()
	d, err := policy.Parse(doc, "trustpolicy.json", policy.TypeOCI)
	if err != nil {
		t.Fatalf("policy.Parse: %v\n%s", err, doc)
	}
	ref, err := reference.Parse(f.reference())
	if err != nil {
		t.Fatal(err)
	}
	sel, err := d.Select(ref)
	if err != nil {
		t.Fatal(err)
	}
	return sel.Statement
}

// keywardVerifier is a fresh Verifier (fresh caches) over the fixture's
// trust stores and plugins.
func (f *fixture) keywardVerifier(t testing.TB) *verify.Verifier {
	t.Helper()
	v, err := verify.NewVerifier(verify.Options{
		TrustStore: truststore.New(filepath.Join(f.configDir, "truststore")),
		PluginDir:  f.pluginDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// loadNotationPolicy decodes a document as notation v1.3.2 does.
func loadNotationPolicy(t testing.TB, doc []byte) *trustpolicy.Document {
	t.Helper()
	var d trustpolicy.Document
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	return &d
}

func (f *fixture) notationStores() ntruststore.X509TrustStore {
	return ntruststore.NewX509TrustStore(dir.NewSysFS(f.configDir))
}

func (f *fixture) notationPlugins() nplugin.Manager {
	return nplugin.NewCLIManager(dir.NewSysFS(f.pluginDir))
}

var (
	pluginBuild    sync.Once
	pluginBinary   string
	pluginBuildErr error
	pluginBuildDir string
)

// installTestPlugin builds testdata/testplugin once per test binary and
// installs it as <dir>/<name>/notation-<name> in a new plugin directory.
func installTestPlugin(t testing.TB, name string) string {
	t.Helper()
	pluginBuild.Do(func() {
		d, err := os.MkdirTemp("", "verify-testplugin-")
		if err != nil {
			pluginBuildErr = err
			return
		}
		pluginBuildDir = d
		pluginBinary = filepath.Join(d, "testplugin")
		out, err := exec.Command("go", "build", "-o", pluginBinary, "./testdata/testplugin").CombinedOutput()
		if err != nil {
			pluginBuildErr = fmt.Errorf("go build ./testdata/testplugin: %v\n%s", err, out)
		}
	})
	if pluginBuildErr != nil {
		t.Fatal(pluginBuildErr)
	}
	plugins := t.TempDir()
	d := filepath.Join(plugins, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pluginBinary)
	if err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, d, "notation-"+name, data, 0o755)
	return plugins
}

// TestMain removes the plugin build directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if pluginBuildDir != "" {
		_ = os.RemoveAll(pluginBuildDir)
	}
	os.Exit(code)
}

// attr is a critical extended attribute.
func attr(key string, value any) signature.Attribute {
	return signature.Attribute{Key: key, Critical: true, Value: value}
}
