// Package verify is the tamper corpus of keyward verify: every case is
// signed at test time by the real notation CLI v1.3.2 (through its local
// keys, or through keyward's plugin), or made from such a signature by
// editing it, or, where notation sign cannot be made to produce it, built
// with notation-core-go; then it is verified by keyward verify and by
// notation verify under the same trust policy and trust store, at the
// levels strict, permissive, audit and skip, in an OCI image layout, in
// olareg (OCI 1.1 referrers API) and in distribution (referrers tag
// schema). keyward's verdict must be notation's in every row, the failing
// check must be the one notation names, the checks logged on a passing
// verification must be the ones notation warns about, and every JSON line
// keyward prints must validate against verify-result.schema.json.
package verify

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
)

// levels are the trust policy levels every case is verified at.
var levels = []string{"strict", "permissive", "audit", "skip"}

// identity is the trusted identity of the policy: every corpus leaf but the
// intruder's carries these attributes.
const identity = "x509.subject: C=US, ST=WA, O=keyward-test"

// expiringFor is how long the expiring leaf is valid after the corpus is
// set up: every signature it makes is made in that time, and verified
// after it.
const expiringFor = 8 * time.Second

// corpusCase is one row group of the corpus: how an artifact gets its
// signature, and which check notation v1.3.2 fails at strict.
type corpusCase struct {
	name string
	// fails is the notation verification type (fail* constant) that fails
	// at strict; "" when the signature passes.
	fails string
	// reason is part of notation's failure reason at strict.
	reason string
	// timed cases depend on a clock: they are signed first, and verified
	// once their leaf or signature has expired.
	timed bool
	sign  func(t *testing.T, w *world, tg *target, a *artifact)
}

// passes says whether a case passes at level, from notation's levels
// (trust policy spec, "Signature Verification details"): integrity, the
// target artifact and plugin discovery are always enforced; authenticity
// is logged at audit; expiry, authentic timestamp and revocation are
// logged at permissive and audit.
func (c corpusCase) passes(level string) bool {
	if level == "skip" || c.fails == "" {
		return true
	}
	switch c.fails {
	case failAuthenticity:
		return level == "audit"
	case failExpiry, failAuthenticTimestamp, failRevocation:
		return level != "strict"
	}
	return false
}

// cases is the corpus.
func cases() []corpusCase {
	return []corpusCase{
		{name: "expired-leaf", fails: failAuthenticTimestamp, reason: "no timestamp countersignature was found in the signature envelope", timed: true, sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "expiring")
		}},
		{name: "timestamp-valid-expired-leaf", timed: true, sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "expiring", w.timestamped(w.tsa)...)
		}},
		{name: "timestamp-after-leaf-expiry", fails: failAuthenticTimestamp, reason: "timestamp can be after certificate \"CN=corpus expiring signer", timed: true, sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "expiring", w.timestamped(w.lateTSA)...)
		}},
		{name: "timestamp-untrusted-tsa", fails: failAuthenticTimestamp, reason: "failed to verify the timestamp countersignature", timed: true, sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "expiring", w.timestamped(w.untrustedTSA)...)
		}},
		{name: "expired-signature", fails: failExpiry, reason: "digital signature has expired on", timed: true, sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "main", "--expiry", signatureLifetime.String())
			w.expiresAt(time.Now().Add(signatureLifetime))
		}},

		{name: "valid-jws", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "main")
		}},
		{name: "valid-cose", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "main", "--signature-format", "cose")
		}},
		{name: "valid-keyward-plugin-envelope", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.pluginSign(t, tg, a)
		}},
		{name: "unsigned", fails: failNoSignature, sign: func(*testing.T, *world, *target, *artifact) {}},
		{name: "payload-altered", fails: failIntegrity, reason: "signature is invalid", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.attachEdited(t, a, a.img, alterPayload(t))
		}},
		{name: "envelope-of-another-artifact", fails: failTargetArtifact, reason: "content descriptor mismatch", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.attachEdited(t, a, testenv.NewImage(t), nil)
		}},
		{name: "signature-bytes-flipped", fails: failIntegrity, reason: "signature is invalid", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.attachEdited(t, a, a.img, flipSignature(t))
		}},
		{name: "unknown-critical-attribute", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			// notation-go v1.3.2 does not reject an unknown critical
			// extended attribute when no verification plugin is named
			// (notation-go v1.3.2 verifier/verifier.go checks them only in
			// processPluginResponse, against a verification plugin's
			// answer), so this passes.
			env := w.attachBuilt(t, a, envelopeSpec{
				mediaType: mediaTypeJWS, leaf: w.main, chain: w.chain(w.main), signingTime: time.Now(),
				attributes: []signature.Attribute{{Key: "io.keyward.corpus.unknown", Critical: true, Value: "must-be-understood"}},
			})
			if crit := jwsCrit(t, env); !slices.Contains(crit, "io.keyward.corpus.unknown") {
				t.Fatalf("the attribute is not critical: crit %q", crit)
			}
		}},
		{name: "chain-without-root", fails: failIntegrity, reason: "Certificate chain must end with a valid self-signed root certificate", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.attachEdited(t, a, a.img, dropRoot(t))
		}},
		{name: "chain-wrong-order", fails: failIntegrity, reason: "is not issued by \"CN=corpus root", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.attachEdited(t, a, a.img, swapIssuers(t))
		}},
		{name: "untrusted-root", fails: failAuthenticity, reason: "the signature's certificate chain does not contain any trusted certificate", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "untrusted")
		}},
		{name: "identity-mismatch", fails: failAuthenticity, reason: "does not match the X.509 trusted identities", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "intruder")
		}},
		{name: "not-yet-valid-leaf", fails: failAuthenticTimestamp, reason: "verification time is before certificate \"CN=corpus future signer", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			// notation sign refuses a leaf that is not valid yet.
			w.attachBuilt(t, a, envelopeSpec{
				mediaType: mediaTypeJWS, leaf: w.future, chain: w.chain(w.future), signingTime: w.future.Cert.NotBefore.Add(time.Minute),
			})
		}},
		{name: "ocsp-revoked", fails: failRevocation, reason: "\"CN=corpus ocsp revoked,O=keyward-test,L=Seattle,ST=WA,C=US\" is revoked", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "ocsp-revoked")
		}},
		{name: "crl-revoked", fails: failRevocation, reason: "\"CN=corpus crl revoked,O=keyward-test,L=Seattle,ST=WA,C=US\" is revoked", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "crl-revoked")
		}},
		{name: "ocsp-responder-down", fails: failRevocation, reason: "\"CN=corpus ocsp down,O=keyward-test,L=Seattle,ST=WA,C=US\" revocation status is unknown", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "ocsp-down")
		}},
		{name: "crl-server-down", fails: failRevocation, reason: "\"CN=corpus crl down,O=keyward-test,L=Seattle,ST=WA,C=US\" revocation status is unknown", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.notationSign(t, tg, a, "crl-down")
		}},
		{name: "verification-plugin-missing", fails: failPluginDiscovery, reason: "error while locating the verification plugin \"corpus-absent\"", sign: func(t *testing.T, w *world, tg *target, a *artifact) {
			w.attachBuilt(t, a, envelopeSpec{
				mediaType: mediaTypeCOSE, leaf: w.main, chain: w.chain(w.main), signingTime: time.Now(),
				attributes: []signature.Attribute{
					{Key: "io.cncf.notary.verificationPlugin", Critical: true, Value: "corpus-absent"},
					{Key: "io.cncf.notary.verificationPluginMinVersion", Critical: true, Value: "1.0.0"},
				},
			})
		}},
	}
}

// signatureLifetime is the --expiry of the expired-signature case.
const signatureLifetime = 2 * time.Second

// world is the PKI, responders and notation configurations of the corpus.
type world struct {
	keyward string // keyward binary
	dir     string

	root, inter *testpki.Cert
	main        *testpki.Cert // the signer of valid and tampered signatures
	future      *testpki.Cert // valid from an hour from now
	expiring    *testpki.Cert // expires expiringFor after set-up
	pluginLeaf  *testpki.Cert
	pluginKeyID string
	pluginChain string

	tsa, lateTSA, untrustedTSA *testpki.TSA
	tsaRoots                   map[*testpki.TSA]string // PEM file of each TSA's root

	signer *testenv.Notation            // signs: local keys and the keyward plugin
	verify map[string]*testenv.Notation // verifies, one configuration a level
	policy map[string]string            // the same policy as a file, for keyward

	mu        sync.Mutex
	notBefore time.Time // the timed cases are verified after this
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		keyward:  testenv.KeywardBinary(t),
		dir:      t.TempDir(),
		tsaRoots: map[*testpki.TSA]string{},
		verify:   map[string]*testenv.Notation{},
		policy:   map[string]string{},
	}
	plugin := testenv.PluginBinary(t)
	w.signer = testenv.NewNotation(t)
	w.signer.InstallPlugin(t, plugin)

	w.root = testpki.Root(t, "corpus root")
	w.inter = w.root.Intermediate(t, "corpus intermediate")
	goodOCSP := testpki.StartOCSP(t, w.inter)
	crl := testpki.StartCRL(t, w.inter)
	w.main = w.inter.Leaf(t, "corpus signer", testpki.WithOCSP(goodOCSP.URL()), testpki.WithCRL(crl.URL()))
	intruder := w.inter.Leaf(t, "corpus intruder", testpki.WithSubject(pkix.Name{
		Country: []string{"US"}, Province: []string{"WA"}, Organization: []string{"intruder"}, CommonName: "corpus intruder",
	}))
	otherRoot := testpki.Root(t, "corpus untrusted root")
	otherInter := otherRoot.Intermediate(t, "corpus untrusted intermediate")
	untrusted := otherInter.Leaf(t, "corpus untrusted signer")

	revokingOCSP := testpki.StartOCSP(t, w.inter)
	ocspRevoked := w.inter.Leaf(t, "corpus ocsp revoked", testpki.WithOCSP(revokingOCSP.URL()))
	revokingOCSP.Revoke(ocspRevoked.Cert.SerialNumber, time.Now().Add(-time.Hour))
	crlRevoked := w.inter.Leaf(t, "corpus crl revoked", testpki.WithCRL(crl.URL()))
	crl.Revoke(crlRevoked.Cert.SerialNumber, time.Now().Add(-time.Hour))
	downOCSP := testpki.StartOCSP(t, w.inter)
	downOCSP.SetDown(true)
	ocspDown := w.inter.Leaf(t, "corpus ocsp down", testpki.WithOCSP(downOCSP.URL()))
	downCRL := testpki.StartCRL(t, w.inter)
	downCRL.SetDown(true)
	crlDown := w.inter.Leaf(t, "corpus crl down", testpki.WithCRL(downCRL.URL()))

	now := time.Now()
	w.future = w.inter.Leaf(t, "corpus future signer", testpki.WithValidity(now.Add(time.Hour), now.Add(20*time.Hour)))
	w.expiring = w.inter.Leaf(t, "corpus expiring signer", testpki.WithValidity(now.Add(-time.Hour), now.Add(expiringFor)))
	w.notBefore = w.expiring.Cert.NotAfter

	w.tsa = testpki.StartTSA(t)
	w.lateTSA = testpki.StartTSA(t)
	w.lateTSA.SetGenTime(func() time.Time { return w.expiring.Cert.NotAfter.Add(time.Hour) })
	w.untrustedTSA = testpki.StartTSA(t)
	for i, a := range []*testpki.TSA{w.tsa, w.lateTSA, w.untrustedTSA} {
		w.tsaRoots[a] = testpki.WriteFile(t, w.dir, fmt.Sprintf("tsa-root-%d.pem", i), testpki.CertsPEM(a.Root().Cert), 0o644)
	}

	// notation's local keys (signingkeys.json).
	var keys []map[string]string
	for name, leaf := range map[string]*testpki.Cert{
		"main": w.main, "intruder": intruder, "expiring": w.expiring,
		"ocsp-revoked": ocspRevoked, "crl-revoked": crlRevoked, "ocsp-down": ocspDown, "crl-down": crlDown,
	} {
		keys = append(keys, w.localKey(t, name, leaf, w.inter, w.root))
	}
	keys = append(keys, w.localKey(t, "untrusted", untrusted, otherInter, otherRoot))
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(w.signer.ConfigDir, 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, w.signer.ConfigDir, "signingkeys.json", b, 0o644)

	// keyward's plugin signs with a PEM key file in ENVELOPE mode.
	w.pluginLeaf = w.inter.Leaf(t, "corpus plugin signer")
	w.pluginKeyID = "file:" + testpki.WriteFile(t, w.dir, "plugin.key", testpki.KeyPEM(t, w.pluginLeaf.Key), 0o600)
	w.pluginChain = testpki.WriteFile(t, w.dir, "plugin-chain.pem", testpki.CertsPEM(w.chain(w.pluginLeaf)...), 0o644)

	// One notation configuration per level, all with the same trust store;
	// keyward reads the same trust store and the same policy from a file.
	for _, level := range levels {
		n := testenv.NewNotation(t)
		n.AddTrustStore(t, "ca", "corpus", w.root.Cert)
		n.AddTrustStore(t, "tsa", "corpus", w.tsa.Root().Cert, w.lateTSA.Root().Cert)
		p := policyDocument(t, level)
		n.SetTrustPolicy(t, p)
		w.verify[level] = n
		w.policy[level] = testpki.WriteFile(t, w.dir, "policy-"+level+".json", p, 0o644)
	}
	return w
}

// policyDocument is the corpus trust policy at level: every scope, the ca
// and tsa stores, timestamps verified once a certificate has expired.
func policyDocument(t testing.TB, level string) []byte {
	t.Helper()
	st := map[string]any{
		"name":                  "corpus-" + level,
		"registryScopes":        []string{"*"},
		"signatureVerification": map[string]string{"level": level},
	}
	if level != "skip" {
		st["signatureVerification"] = map[string]string{"level": level, "verifyTimestamp": "afterCertExpiry"}
		st["trustStores"] = []string{"ca:corpus", "tsa:corpus"}
		st["trustedIdentities"] = []string{identity}
	}
	b, err := json.Marshal(map[string]any{"version": "1.0", "trustPolicies": []any{st}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// localKey writes a key and its chain for notation's signingkeys.json.
func (w *world) localKey(t *testing.T, name string, leaf *testpki.Cert, cas ...*testpki.Cert) map[string]string {
	t.Helper()
	chain := testpki.Chain(append([]*testpki.Cert{leaf}, cas...)...)
	return map[string]string{
		"name":     name,
		"keyPath":  testpki.WriteFile(t, w.dir, name+".key", testpki.KeyPEM(t, leaf.Key), 0o600),
		"certPath": testpki.WriteFile(t, w.dir, name+".crt", testpki.CertsPEM(chain...), 0o644),
	}
}

// chain is leaf, intermediate, root of the trusted CA.
func (w *world) chain(leaf *testpki.Cert) []*x509.Certificate {
	return testpki.Chain(leaf, w.inter, w.root)
}

// expiresAt records that a timed case can only be verified after at.
func (w *world) expiresAt(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if at.After(w.notBefore) {
		w.notBefore = at
	}
}

// timestamped are the notation sign flags of an RFC 3161 timestamp by a.
func (w *world) timestamped(a *testpki.TSA) []string {
	return []string{"--timestamp-url", a.URL(), "--timestamp-root-cert", w.tsaRoots[a]}
}

// notationSign signs the artifact in its target with a local key.
func (w *world) notationSign(t *testing.T, tg *target, a *artifact, key string, extra ...string) {
	t.Helper()
	args := append(append([]string{"sign", "--key", key}, tg.signArgs()...), extra...)
	w.signer.MustRun(t, append(args, a.ref)...)
}

// pluginSign signs through keyward's plugin, which builds a COSE envelope
// (ENVELOPE mode).
func (w *world) pluginSign(t *testing.T, tg *target, a *artifact) {
	t.Helper()
	args := append([]string{"sign", "--plugin", "keyward", "--id", w.pluginKeyID,
		"--plugin-config", "cert_chain=" + w.pluginChain, "--plugin-config", "signing_mode=envelope",
		"--signature-format", "cose"}, tg.signArgs()...)
	w.signer.MustRun(t, append(args, a.ref)...)
}

// attachEdited has notation sign img (a copy in a scratch layout) with the
// main key, edits the JWS envelope (nil: keeps it), and attaches it to a.
func (w *world) attachEdited(t *testing.T, a *artifact, img *testenv.Image, edit func(*jwsEnvelope)) {
	t.Helper()
	ctx := context.Background()
	scratch := filepath.Join(t.TempDir(), "scratch")
	store, err := ociStore(ctx, scratch)
	if err != nil {
		t.Fatal(err)
	}
	if err := push(ctx, img, store); err != nil {
		t.Fatal(err)
	}
	w.signer.MustRun(t, "sign", "--key", "main", "--oci-layout", scratch+"@"+img.Manifest.Desc.Digest.String())
	mediaType, env := readSignature(t, scratch, img.Manifest.Desc)
	if mediaType != mediaTypeJWS {
		t.Fatalf("notation signed with %s, want JWS", mediaType)
	}
	if edit != nil {
		env = editJWS(t, env, edit)
	}
	attach(t, a, mediaType, env, x5c(t, env))
}

// attachBuilt attaches an envelope built with notation-core-go.
func (w *world) attachBuilt(t *testing.T, a *artifact, spec envelopeSpec) []byte {
	t.Helper()
	env, chain := spec.build(t, a.desc)
	attach(t, a, spec.mediaType, env, chain)
	return env
}

// signed is a case's artifact in one target.
type signed struct {
	c corpusCase
	a *artifact
}

// row is one verification: a case at a level in a target.
type row struct {
	c                 corpusCase
	level, target     string
	notation, keyward verdict
	notationOut       string
}

// TestCorpus signs the corpus in every target, verifies it with both
// tools at every level, and compares.
func TestCorpus(t *testing.T) {
	targets := []*target{
		layoutTarget(t),
		registryTarget("olareg", testenv.StartOlareg(t)),
		registryTarget("distribution", testenv.StartDistribution(t)),
	}
	w := newWorld(t)
	all := cases()
	// The expiring leaf must sign before it expires: timed cases first.
	slices.SortStableFunc(all, func(a, b corpusCase) int {
		switch {
		case a.timed && !b.timed:
			return -1
		case b.timed && !a.timed:
			return 1
		}
		return 0
	})
	corpus := make(map[string][]signed, len(targets))
	var mu sync.Mutex
	t.Run("sign", func(t *testing.T) {
		for _, tg := range targets {
			t.Run(tg.name, func(t *testing.T) {
				t.Parallel()
				var s []signed
				for _, c := range all {
					a := tg.newArtifact(t, c.name)
					c.sign(t, w, tg, a)
					s = append(s, signed{c, a})
				}
				mu.Lock()
				corpus[tg.name] = s
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	w.mu.Lock()
	wait := time.Until(w.notBefore) + 1100*time.Millisecond
	w.mu.Unlock()
	if wait > 0 {
		t.Logf("waiting %v for the expiring leaf and signature to expire", wait.Round(time.Millisecond))
		time.Sleep(wait)
	}

	var rows []row
	t.Run("verify", func(t *testing.T) {
		for _, tg := range targets {
			t.Run(tg.name, func(t *testing.T) {
				t.Parallel()
				got := w.verifyTarget(t, tg, corpus[tg.name])
				mu.Lock()
				rows = append(rows, got...)
				mu.Unlock()
			})
		}
	})
	logMatrix(t, all, rows)
}

// verifyTarget verifies every case of a target at every level, with one
// keyward verify run per level (all references at once) and one notation
// verify run per reference, and compares each row.
func (w *world) verifyTarget(t *testing.T, tg *target, corpus []signed) []row {
	var rows []row
	for _, level := range levels {
		kw := w.keywardVerify(t, tg, level, corpus)
		nv := w.notationVerify(t, tg, level, corpus)
		for i, s := range corpus {
			r := row{c: s.c, level: level, target: tg.name, notation: nv[i].v, notationOut: nv[i].out}
			line, ok := kw[s.a.ref]
			if !ok {
				t.Errorf("%s %s: keyward printed no result for %s", s.c.name, level, s.a.ref)
				continue
			}
			r.keyward = keywardVerdict(line)
			t.Run(s.c.name+"/"+level, func(t *testing.T) { compareRow(t, r, line) })
			rows = append(rows, r)
		}
	}
	return rows
}

// keywardVerify runs keyward verify once on every reference of the target
// and returns the result lines by reference, each validated against the
// schema.
func (w *world) keywardVerify(t *testing.T, tg *target, level string, corpus []signed) map[string]keywardLine {
	t.Helper()
	n := w.verify[level]
	args := append([]string{"verify", "--policy", w.policy[level], "--trust-store", filepath.Join(n.ConfigDir, "truststore"), "-o", "json"}, tg.keywardArgs()...)
	for _, s := range corpus {
		args = append(args, s.a.ref)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.keyward, args...)
	cmd.Env = n.Env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 1) {
		t.Fatalf("keyward verify (%s, %s): %v\n%s%s", tg.name, level, err, stdout.String(), stderr.String())
	}
	lines, err := decodeLines(t, stdout.String())
	if err != nil {
		t.Fatalf("keyward verify (%s, %s): %v", tg.name, level, err)
	}
	byRef := map[string]keywardLine{}
	for _, l := range lines {
		if _, dup := byRef[l.Reference]; dup {
			t.Errorf("keyward printed %s twice", l.Reference)
		}
		byRef[l.Reference] = l
	}
	if len(lines) != len(corpus) {
		t.Errorf("keyward verify (%s, %s): %d lines for %d references", tg.name, level, len(lines), len(corpus))
	}
	return byRef
}

type notationResult struct {
	v   verdict
	out string
}

// notationVerify runs notation verify -v on each reference, two at a time.
func (w *world) notationVerify(t *testing.T, tg *target, level string, corpus []signed) []notationResult {
	t.Helper()
	n := w.verify[level]
	res := make([]notationResult, len(corpus))
	work := make(chan int)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				args := append(append([]string{"verify", "-v"}, tg.notationVerifyArgs()...), corpus[i].a.ref)
				stdout, stderr, err := n.Run(t, args...)
				out := stdout + stderr
				res[i] = notationResult{v: notationVerdict(err == nil, out), out: out}
			}
		}()
	}
	for i := range corpus {
		work <- i
	}
	close(work)
	wg.Wait()
	return res
}

// compareRow checks one row: notation reached the verdict the case expects
// (else the corpus is not testing what it says), and keyward reached
// notation's, failing at the same check for the same reason, and logging
// the same checks when passing.
func compareRow(t *testing.T, r row, line keywardLine) {
	nv, kv := r.notation, r.keyward
	if want := r.c.passes(r.level); nv.passed != want {
		t.Errorf("notation verify %s (want pass=%v, failing at %q at strict): the corpus case is wrong\n%s", nv, want, r.c.fails, r.notationOut)
		return
	}
	if !nv.passed && r.level == "strict" && (nv.failed != r.c.fails || !strings.Contains(nv.reason, r.c.reason)) {
		t.Errorf("notation failed at %q because %q; the case expects %q because %q\n%s", nv.failed, nv.reason, r.c.fails, r.c.reason, r.notationOut)
	}
	if nv.failed == failUnknown {
		t.Errorf("cannot tell from notation's output what failed:\n%s", r.notationOut)
	}
	if kv.passed != nv.passed || kv.skipped != nv.skipped || kv.failed != nv.failed {
		t.Errorf("keyward %s, notation %s\nnotation:\n%s\nkeyward: %+v", kv, nv, r.notationOut, line)
		return
	}
	if strings.Join(kv.warned, ",") != strings.Join(nv.warned, ",") {
		t.Errorf("logged failures: keyward %v, notation %v\nnotation:\n%s", kv.warned, nv.warned, r.notationOut)
	}
	if !nv.passed && nv.reason != "" && kv.reason != nv.reason {
		t.Errorf("failure reason differs:\nkeyward:  %s\nnotation: %s", kv.reason, nv.reason)
	}
	if !kv.skipped && kv.failed != failNoSignature && len(line.Signatures) != 1 {
		t.Errorf("keyward evaluated %d signatures, the artifact has 1", len(line.Signatures))
	}
}

// logMatrix prints the case × level × target matrix with both verdicts.
func logMatrix(t *testing.T, all []corpusCase, rows []row) {
	type key struct{ c, level, target string }
	byKey := map[key]row{}
	targets := map[string]bool{}
	for _, r := range rows {
		byKey[key{r.c.name, r.level, r.target}] = r
		targets[r.target] = true
	}
	var names []string
	for n := range targets {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%-30s %-10s %-20s", "case", "level", "expected")
	for _, n := range names {
		fmt.Fprintf(&b, " | %-46s", n+": notation / keyward")
	}
	b.WriteString("\n")
	agree, total := 0, 0
	for _, c := range all {
		for _, level := range levels {
			want := "pass"
			if !c.passes(level) {
				want = "FAIL:" + c.fails
			} else if level == "skip" {
				want = "skip"
			}
			fmt.Fprintf(&b, "%-30s %-10s %-20s", c.name, level, want)
			for _, n := range names {
				r, ok := byKey[key{c.name, level, n}]
				cell := "-"
				if ok {
					total++
					cell = r.notation.String() + " / " + r.keyward.String()
					if r.notation.String() == r.keyward.String() {
						agree++
					}
				}
				fmt.Fprintf(&b, " | %-46s", cell)
			}
			b.WriteString("\n")
		}
	}
	fmt.Fprintf(&b, "%d of %d rows: keyward's verdict is notation's\n\nnotation's failure reasons at strict:\n", agree, total)
	for _, c := range all {
		for _, n := range names {
			if r, ok := byKey[key{c.name, "strict", n}]; ok && !r.notation.passed {
				fmt.Fprintf(&b, "%-30s %-12s %s\n", c.name, n, r.notation.reason)
			}
		}
	}
	t.Log("\n" + b.String())
}
