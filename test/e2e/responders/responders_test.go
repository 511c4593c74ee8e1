// Package responders proves that the OCSP responder, CRL server and RFC 3161
// TSA of internal/testpki work with the real notation CLI v1.3.2: notation
// signs with a local key whose leaf names the responders, timestamps at the
// TSA, and verify reports what the responders say. The messages asserted
// here are the ones keyward verify has to match.
package responders

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
)

// env is one notation home with local signing keys and OCI layouts.
type env struct {
	n   *testenv.Notation
	dir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return &env{n: testenv.NewNotation(t), dir: t.TempDir()}
}

// artifact makes a fresh OCI layout and returns its reference.
func (e *env) artifact(t *testing.T) string {
	t.Helper()
	layout, digest := testenv.NewOCILayout(t, filepath.Join(t.TempDir(), "layout"))
	return layout + "@" + digest
}

// sign signs ref with key name; extra goes before the reference.
func (e *env) sign(t *testing.T, key, ref string, extra ...string) {
	t.Helper()
	args := append([]string{"sign", "--key", key, "--oci-layout"}, extra...)
	e.n.MustRun(t, append(args, ref)...)
}

// verify runs notation verify on ref and returns its output and whether it
// passed.
func (e *env) verify(t *testing.T, ref string) (out string, ok bool) {
	t.Helper()
	stdout, stderr, err := e.n.Run(t, "verify", "-v", "--oci-layout", "--scope", "local/layout", ref)
	return stdout + stderr, err == nil
}

// mustVerify fails the test unless notation verify passes and returns its
// output.
func (e *env) mustVerify(t *testing.T, ref string) string {
	t.Helper()
	out, ok := e.verify(t, ref)
	if !ok {
		t.Fatalf("notation verify failed:\n%s", out)
	}
	return out
}

// mustFail fails the test unless notation verify fails with want in its
// output, and returns the output.
func (e *env) mustFail(t *testing.T, ref, want string) string {
	t.Helper()
	out, ok := e.verify(t, ref)
	if ok {
		t.Fatalf("notation verify passed, want a failure with %q:\n%s", want, out)
	}
	if !strings.Contains(out, want) {
		t.Fatalf("notation verify failed without %q:\n%s", want, out)
	}
	t.Logf("notation verify: %s", strings.TrimSpace(out))
	return out
}

// policy is a trust policy for every scope trusting the ca store "e2e" at
// level, with extra stores (e.g. "tsa:e2e") and verifyTimestamp if set.
func (e *env) policy(t *testing.T, level, verifyTimestamp string, extraStores ...string) {
	t.Helper()
	sv := map[string]string{"level": level}
	if verifyTimestamp != "" {
		sv["verifyTimestamp"] = verifyTimestamp
	}
	b, err := json.Marshal(map[string]any{
		"version": "1.0",
		"trustPolicies": []map[string]any{{
			"name":                  "responders",
			"registryScopes":        []string{"*"},
			"signatureVerification": sv,
			"trustStores":           append([]string{"ca:e2e"}, extraStores...),
			"trustedIdentities":     []string{"*"},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.n.SetTrustPolicy(t, b)
}

// subject is how notation names a certificate in its messages.
func subject(c *testpki.Cert) string { return c.Cert.Subject.String() }

// TestOCSP: good, revoked, unknown and down at the leaf's OCSP responder.
func TestOCSP(t *testing.T) {
	t.Parallel()
	root := testpki.Root(t, "e2e ocsp root")
	o := testpki.StartOCSP(t, root)
	leaf := root.Leaf(t, "e2e ocsp leaf", testpki.WithOCSP(o.URL()))
	e := newEnv(t)
	e.n.AddTrustStore(t, "ca", "e2e", root.Cert)
	e.n.AddLocalKey(t, "k", leaf, root)
	e.policy(t, "strict", "")
	ref := e.artifact(t)
	e.sign(t, "k", ref)

	e.mustVerify(t, ref)
	if get, _ := o.Requests(); get == 0 {
		t.Fatal("notation verify passed without asking the OCSP responder")
	}

	o.Revoke(leaf.Cert.SerialNumber, time.Now().Add(-time.Minute))
	e.mustFail(t, ref, `signing certificate with subject "`+subject(leaf)+`" is revoked`)

	o.Unknown(leaf.Cert.SerialNumber)
	e.mustFail(t, ref, `signing certificate with subject "`+subject(leaf)+`" revocation status is unknown`)

	o.Good(leaf.Cert.SerialNumber)
	o.SetDown(true)
	e.mustFail(t, ref, `signing certificate with subject "`+subject(leaf)+`" revocation status is unknown`)

	// permissive logs revocation failures instead of enforcing them.
	e.policy(t, "permissive", "")
	out := e.mustVerify(t, ref)
	if want := `Warning: revocation was set to "log" and failed with error: signing certificate with subject "` +
		subject(leaf) + `" revocation status is unknown`; !strings.Contains(out, want) {
		t.Errorf("permissive verify does not warn %q:\n%s", want, out)
	}
}

// TestCRL: good, revoked, expired and down at the leaf's CRL distribution
// point, and notation's CRL cache.
func TestCRL(t *testing.T) {
	t.Parallel()
	root := testpki.Root(t, "e2e crl root")
	c := testpki.StartCRL(t, root)
	good := root.Leaf(t, "e2e crl good leaf", testpki.WithCRL(c.URL()))
	revoked := root.Leaf(t, "e2e crl revoked leaf", testpki.WithCRL(c.URL()))
	c.Revoke(revoked.Cert.SerialNumber, time.Now().Add(-time.Minute))

	e := newEnv(t)
	e.n.AddTrustStore(t, "ca", "e2e", root.Cert)
	e.n.AddLocalKey(t, "good", good, root)
	e.n.AddLocalKey(t, "revoked", revoked, root)
	e.policy(t, "strict", "")
	goodRef, revokedRef := e.artifact(t), e.artifact(t)
	e.sign(t, "good", goodRef)
	e.sign(t, "revoked", revokedRef)

	e.mustVerify(t, goodRef)
	e.mustFail(t, revokedRef, `signing certificate with subject "`+subject(revoked)+`" is revoked`)

	// notation caches the CRL under $XDG_CACHE_HOME/notation/crl until its
	// NextUpdate: a revocation after the first fetch goes unseen...
	fetched, _ := c.Requests()
	c.Revoke(good.Cert.SerialNumber, time.Now())
	e.mustVerify(t, goodRef)
	if again, _ := c.Requests(); again != fetched {
		t.Fatalf("the CRL was fetched %d times, want %d: notation did not use its cache", again, fetched)
	}
	// ...until the cache is emptied.
	cache := e.crlCache(t)
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	e.mustFail(t, goodRef, `signing certificate with subject "`+subject(good)+`" is revoked`)

	unknown := `signing certificate with subject "` + subject(good) + `" revocation status is unknown`
	c.SetDown(true)
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	e.mustFail(t, goodRef, unknown)
	e.policy(t, "permissive", "")
	if want := `Warning: revocation was set to "log" and failed with error: ` + unknown; !strings.Contains(e.mustVerify(t, goodRef), want) {
		t.Errorf("permissive verify does not warn %q", want)
	}

	c.SetDown(false)
	c.SetNextUpdate(-time.Hour)
	e.policy(t, "strict", "")
	if err := os.RemoveAll(cache); err != nil {
		t.Fatal(err)
	}
	out := e.mustFail(t, goodRef, unknown)
	if !strings.Contains(out, "expired CRL") {
		t.Errorf("notation does not say the CRL expired:\n%s", out)
	}
}

// crlCache is notation's CRL cache directory: {XDG_CACHE_HOME}/notation/crl.
func (e *env) crlCache(t *testing.T) string {
	t.Helper()
	for _, kv := range e.n.Env {
		if v, ok := strings.CutPrefix(kv, "XDG_CACHE_HOME="); ok {
			dir := filepath.Join(v, "notation", "crl")
			if _, err := os.Stat(dir); err != nil {
				t.Fatalf("notation's CRL cache: %v", err)
			}
			return dir
		}
	}
	t.Fatal("the notation environment sets no XDG_CACHE_HOME")
	return ""
}

// TestOCSPFallbackToCRL: with the OCSP responder down, notation asks the CRL.
func TestOCSPFallbackToCRL(t *testing.T) {
	t.Parallel()
	root := testpki.Root(t, "e2e fallback root")
	o := testpki.StartOCSP(t, root)
	c := testpki.StartCRL(t, root)
	leaf := root.Leaf(t, "e2e fallback leaf", testpki.WithOCSP(o.URL()), testpki.WithCRL(c.URL()))
	e := newEnv(t)
	e.n.AddTrustStore(t, "ca", "e2e", root.Cert)
	e.n.AddLocalKey(t, "k", leaf, root)
	e.policy(t, "strict", "")
	ref := e.artifact(t)
	e.sign(t, "k", ref)

	o.SetDown(true)
	out := e.mustVerify(t, ref)
	if base, _ := c.Requests(); base != 1 {
		t.Fatalf("CRL fetched %d times, want 1", base)
	}
	if !strings.Contains(out, "fallback to CRL") {
		t.Errorf("notation does not log the fallback:\n%s", out)
	}
	c.Revoke(leaf.Cert.SerialNumber, time.Now())
	if err := os.RemoveAll(e.crlCache(t)); err != nil {
		t.Fatal(err)
	}
	e.mustFail(t, ref, `signing certificate with subject "`+subject(leaf)+`" is revoked`)
}

// TestTimestamp signs with RFC 3161 timestamps from the test TSA using a
// leaf that expires seconds later, then verifies after it expired.
func TestTimestamp(t *testing.T) {
	t.Parallel()
	root := testpki.Root(t, "e2e timestamp root")
	// The leaf expires in a few seconds (x509 keeps whole seconds).
	leaf := root.Leaf(t, "e2e expiring leaf", testpki.WithValidity(time.Now().Add(-time.Hour), time.Now().Add(3*time.Second)))
	tsa := testpki.StartTSA(t)
	late := testpki.StartTSA(t) // stamps a time after the leaf expired
	late.SetGenTime(func() time.Time { return leaf.Cert.NotAfter.Add(time.Hour) })
	untrusted := testpki.StartTSA(t)

	e := newEnv(t)
	e.n.AddTrustStore(t, "ca", "e2e", root.Cert)
	e.n.AddTrustStore(t, "tsa", "e2e", tsa.Root().Cert, late.Root().Cert)
	e.n.AddLocalKey(t, "k", leaf, root)
	// A leaf that outlives the test, for the check made before expiry:
	// signing under load may take longer than the expiring leaf lives.
	e.n.AddLocalKey(t, "lasting", root.Leaf(t, "e2e lasting leaf"), root)
	rootPEM := func(a *testpki.TSA) string {
		return testpki.WriteFile(t, e.dir, a.Leaf().Cert.SerialNumber.String()+".pem", testpki.CertsPEM(a.Root().Cert), 0o644)
	}
	stamped := func(a *testpki.TSA) []string {
		return []string{"--timestamp-url", a.URL(), "--timestamp-root-cert", rootPEM(a)}
	}

	withTS, withTSCOSE, withoutTS, lateTS, untrustedTS := e.artifact(t), e.artifact(t), e.artifact(t), e.artifact(t), e.artifact(t)
	e.sign(t, "k", withTS, stamped(tsa)...)
	e.sign(t, "k", withTSCOSE, append([]string{"--signature-format", "cose"}, stamped(tsa)...)...)
	if tsa.Requests() != 2 {
		t.Fatalf("TSA got %d requests, want 2", tsa.Requests())
	}
	e.sign(t, "k", withoutTS)
	lasting := e.artifact(t)
	e.sign(t, "lasting", lasting)
	e.sign(t, "k", lateTS, stamped(late)...)
	e.sign(t, "k", untrustedTS, stamped(untrusted)...)

	// notation sign checks the token it gets, so a broken TSA fails signing.
	bad := testpki.StartTSA(t)
	for _, tc := range []struct {
		name, want string
		knob       func(bool)
	}{
		{"broken signature", "failed to verify signed token: cms verification failure", bad.BreakSignature},
		{"wrong imprint", "message imprint in response", bad.WrongImprint},
		{"down", "https response bad status: 500 Internal Server Error", bad.SetDown},
	} {
		tc.knob(true)
		_, stderr, err := e.n.Run(t, append(append([]string{"sign", "--key", "k", "--oci-layout"}, stamped(bad)...), e.artifact(t))...)
		tc.knob(false)
		if err == nil || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: notation sign: err %v, want a failure with %q:\n%s", tc.name, err, tc.want, stderr)
		}
		t.Logf("%s: notation sign: %s", tc.name, strings.TrimSpace(stderr))
	}

	// Before the leaf expires, afterCertExpiry does not look at timestamps.
	e.policy(t, "strict", "afterCertExpiry", "tsa:e2e")
	if out := e.mustVerify(t, lasting); !strings.Contains(out, "Timestamp verification disabled") {
		t.Errorf("notation does not say it skipped the timestamp:\n%s", out)
	}

	if wait := time.Until(leaf.Cert.NotAfter) + 1100*time.Millisecond; wait > 0 {
		time.Sleep(wait)
	}
	expired := `verification time is after certificate "` + subject(leaf) + `" validity period, it was expired at "` +
		leaf.Cert.NotAfter.Format(time.RFC1123Z) + `"`

	t.Run("timestamp after expiry passes", func(t *testing.T) {
		e.policy(t, "strict", "afterCertExpiry", "tsa:e2e")
		e.mustVerify(t, withTS)
		e.mustVerify(t, withTSCOSE)
		e.policy(t, "strict", "always", "tsa:e2e")
		e.mustVerify(t, withTS)
	})
	t.Run("no timestamp fails", func(t *testing.T) {
		e.policy(t, "strict", "afterCertExpiry", "tsa:e2e")
		e.mustFail(t, withoutTS, "no timestamp countersignature was found in the signature envelope")
	})
	t.Run("no tsa store fails", func(t *testing.T) {
		e.policy(t, "strict", "")
		e.mustFail(t, withTS, expired)
		e.mustFail(t, withoutTS, expired)
	})
	t.Run("genTime after expiry fails", func(t *testing.T) {
		e.policy(t, "strict", "afterCertExpiry", "tsa:e2e")
		e.mustFail(t, lateTS, `timestamp can be after certificate "`+subject(leaf)+`" validity period, it was expired at "`+
			leaf.Cert.NotAfter.Format(time.RFC1123Z)+`"`)
	})
	t.Run("untrusted TSA fails", func(t *testing.T) {
		e.policy(t, "strict", "afterCertExpiry", "tsa:e2e")
		e.mustFail(t, untrustedTS, "failed to verify the timestamp countersignature with error:")
	})
}
