package verify_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content"
	orasoci "oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
)

// writeExampleFixture regenerates testdata/example, the signed OCI layout
// the package examples verify offline. Run it only when the fixture must
// change (its certificates are valid for 100 years):
//
//	go test ./verify -run TestWriteExampleFixture -write-example-fixture
var writeExampleFixture = flag.Bool("write-example-fixture", false, "regenerate testdata/example (the signed OCI layout of the examples)")

// The example fixture: where it lives and what it holds.
const (
	exampleDir          = "testdata/example"
	exampleTag          = "v1"
	exampleSignerCN     = "keyward example signer"
	exampleArtifactType = "application/vnd.keyward.example.readme"
	// exampleMaxBytes bounds the whole fixture, so that it stays a few KB.
	exampleMaxBytes = 16 << 10
	// exampleMinYearsLeft is how long the committed certificates must still
	// be valid; the examples' output depends on it.
	exampleMinYearsLeft = 50
)

// examplePolicy is the fixture's trust policy: the same layout verified
// under three scopes reaches three verdicts.
func examplePolicy() []byte {
	signer := "x509.subject: C=US, ST=WA, L=Seattle, O=keyward-test, CN=" + exampleSignerCN
	other := "x509.subject: C=US, ST=WA, L=Seattle, O=keyward-test, CN=someone else"
	type verification struct {
		Level string `json:"level"`
	}
	type statement struct {
		Name                  string       `json:"name"`
		RegistryScopes        []string     `json:"registryScopes"`
		SignatureVerification verification `json:"signatureVerification"`
		TrustStores           []string     `json:"trustStores"`
		TrustedIdentities     []string     `json:"trustedIdentities"`
	}
	st := func(name, scope, level, identity string) statement {
		return statement{name, []string{scope}, verification{level}, []string{"ca:example"}, []string{identity}}
	}
	doc, _ := json.MarshalIndent(struct {
		Version       string      `json:"version"`
		TrustPolicies []statement `json:"trustPolicies"`
	}{"1.0", []statement{
		st("example", "local/example", "strict", signer),
		st("example-audit", "local/example-audit", "audit", other),
		st("example-other-signer", "local/example-other-signer", "strict", other),
	}}, "", "  ")
	return append(doc, '\n')
}

// TestWriteExampleFixture checks the committed example fixture (small,
// certificates far from expiry and without revocation URLs, so that the
// examples need no network), and with -write-example-fixture first writes
// a new one: a root and a code-signing leaf valid for 100 years, a small
// artifact tagged v1 in an OCI layout, one JWS signature of it made with
// notation-core-go, the root in the trust store x509/ca/example, and
// trustpolicy.json.
func TestWriteExampleFixture(t *testing.T) {
	if *writeExampleFixture {
		writeExample(t)
	}

	var total int64
	err := filepath.WalkDir(exampleDir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			total += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatalf("read the example fixture (regenerate it with -write-example-fixture): %v", err)
	}
	if total > exampleMaxBytes {
		t.Errorf("the example fixture holds %d bytes, more than %d", total, exampleMaxBytes)
	}

	data, err := os.ReadFile(filepath.Join(exampleDir, "truststore", "x509", "ca", "example", "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("root.pem holds no PEM block")
	}
	root, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(root.NotAfter); left < exampleMinYearsLeft*365*24*time.Hour {
		t.Errorf("the example root expires on %s: regenerate the fixture with -write-example-fixture", root.NotAfter)
	}
	if len(root.OCSPServer) > 0 || len(root.CRLDistributionPoints) > 0 {
		t.Errorf("the example root names revocation URLs %v %v: the examples must run offline", root.OCSPServer, root.CRLDistributionPoints)
	}

	doc, err := policy.LoadFile(filepath.Join(exampleDir, "trustpolicy.json"), policy.TypeAuto)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(doc.Statements()); got != 3 {
		t.Errorf("trustpolicy.json has %d statements, want 3", got)
	}

	// notation v1.3.2 reaches the verdicts the examples print: the
	// signature is one notation finds in a layout, and nothing about the
	// fixture is keyward's alone.
	t.Run("notation", func(t *testing.T) {
		n := testenv.NewNotation(t)
		if err := os.CopyFS(filepath.Join(n.ConfigDir, "truststore"), os.DirFS(filepath.Join(exampleDir, "truststore"))); err != nil {
			t.Fatal(err)
		}
		policyDoc, err := os.ReadFile(filepath.Join(exampleDir, "trustpolicy.json"))
		if err != nil {
			t.Fatal(err)
		}
		testpki.WriteFile(t, n.ConfigDir, "trustpolicy.json", policyDoc, 0o600)
		for _, c := range []struct {
			scope  string
			passes bool
		}{{"local/example", true}, {"local/example-audit", true}, {"local/example-other-signer", false}} {
			_, stderr, err := n.Run(t, "verify", "--oci-layout", "--scope", c.scope, filepath.Join(exampleDir, "layout")+":"+exampleTag)
			if (err == nil) != c.passes {
				t.Errorf("notation verify under scope %s: err = %v, want passing %t\n%s", c.scope, err, c.passes, stderr)
			}
		}
	})
}

func writeExample(t *testing.T) {
	ctx := context.Background()
	for _, d := range []string{"layout", "truststore"} {
		if err := os.RemoveAll(filepath.Join(exampleDir, d)); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Hour)
	valid := testpki.WithValidity(now.Add(-24*time.Hour), now.AddDate(100, 0, 0))
	root := testpki.Root(t, "keyward example root", valid, testpki.WithKeySpec("EC-256"))
	leaf := root.Leaf(t, exampleSignerCN, valid)

	store, err := orasoci.New(filepath.Join(exampleDir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	// A small artifact with fixed content: one text layer, the empty
	// config of an artifact manifest.
	text := []byte("An artifact the keyward examples verify.\n")
	layer := content.NewDescriptorFromBytes("text/plain", text)
	empty := ocispec.DescriptorEmptyJSON
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: exampleArtifactType,
		Config:       empty,
		Layers:       []ocispec.Descriptor{layer},
	})
	if err != nil {
		t.Fatal(err)
	}
	artifact := content.NewDescriptorFromBytes(ocispec.MediaTypeImageManifest, manifest)
	for _, b := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{empty, empty.Data}, {layer, text}, {artifact, manifest}} {
		if err := store.Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Tag(ctx, artifact, exampleTag); err != nil {
		t.Fatal(err)
	}
	chain := testpki.Chain(leaf, root)
	env := (&fixture{}).sign(t, signSpec{leaf: leaf, chain: chain, desc: &artifact})
	attachFormB(t, ctx, store, artifact, env, chain)
	if err := store.SaveIndex(); err != nil {
		t.Fatal(err)
	}
	// oras-go leaves its empty ingest folder behind.
	_ = os.Remove(filepath.Join(exampleDir, "layout", "ingest"))

	storeDir := filepath.Join(exampleDir, "truststore", "x509", "ca", "example")
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, storeDir, "root.pem", testpki.CertsPEM(root.Cert), 0o644)
	testpki.WriteFile(t, exampleDir, "trustpolicy.json", examplePolicy(), 0o644)
}

// attachFormB stores a JWS envelope as the signature manifest notation
// v1.3.2 writes: config media type application/vnd.cncf.notary.signature,
// no artifactType, the envelope as the one layer, the artifact as subject,
// and the chain's thumbprints. In an OCI layout notation-go v1.3.2 finds
// only this form (registry/repository.go signatureReferrers reads the
// config media type, not artifactType), so the fixture verifies with
// notation too.
func attachFormB(t *testing.T, ctx context.Context, store *orasoci.Store, artifact ocispec.Descriptor, env []byte, chain []*x509.Certificate) {
	t.Helper()
	layer := content.NewDescriptorFromBytes(mtJWS, env)
	config := content.NewDescriptorFromBytes(oci.ArtifactTypeSignature, []byte("{}"))
	for _, b := range []struct {
		desc ocispec.Descriptor
		data []byte
	}{{layer, env}, {config, []byte("{}")}} {
		// The config holds the same bytes as the artifact's empty config.
		if err := store.Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			t.Fatal(err)
		}
	}
	thumbs := make([]string, len(chain))
	for i, c := range chain {
		sum := sha256.Sum256(c.Raw)
		thumbs[i] = hex.EncodeToString(sum[:])
	}
	thumbJSON, err := json.Marshal(thumbs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oras.PackManifest(ctx, store, oras.PackManifestVersion1_1, "", oras.PackManifestOptions{
		Subject:             &artifact,
		Layers:              []ocispec.Descriptor{layer},
		ConfigDescriptor:    &config,
		ManifestAnnotations: map[string]string{"io.cncf.notary.x509chain.thumbprint#S256": string(thumbJSON)},
	}); err != nil {
		t.Fatal(err)
	}
}
