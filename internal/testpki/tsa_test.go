package testpki

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/revocation/result"
	nx509 "github.com/notaryproject/notation-core-go/x509"
	"github.com/notaryproject/tspclient-go"
)

// stamp asks the TSA for a token over message through tspclient-go's HTTP
// timestamper, which checks the response against the request (status,
// imprint, nonce, certReq).
func stamp(t *testing.T, a *TSA, message []byte, h crypto.Hash, noCert bool) (*tspclient.SignedToken, error) {
	t.Helper()
	ts, err := tspclient.NewHTTPTimestamper(nil, a.URL())
	if err != nil {
		t.Fatal(err)
	}
	req, err := tspclient.NewRequest(tspclient.RequestOptions{Content: message, HashAlgorithm: h, NoCert: noCert})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.Timestamp(context.Background(), req)
	if err != nil {
		return nil, err
	}
	return resp.SignedToken()
}

// verifyToken does what notation verify does with a timestamp: verify the
// token against the TSA roots at genTime, validate the TSA chain, validate
// the TSTInfo against the message.
func verifyToken(tok *tspclient.SignedToken, message []byte, roots ...*x509.Certificate) (*tspclient.Timestamp, []*x509.Certificate, error) {
	info, err := tok.Info()
	if err != nil {
		return nil, nil, err
	}
	ts, err := info.Validate(message)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	chain, err := tok.Verify(context.Background(), x509.VerifyOptions{CurrentTime: ts.Value, Roots: pool})
	if err != nil {
		return nil, nil, err
	}
	if err := nx509.ValidateTimestampingCertChain(chain); err != nil {
		return nil, nil, err
	}
	return ts, chain, nil
}

func TestTSAGoodTokens(t *testing.T) {
	message := []byte("the primitive signature bytes")
	for _, tc := range []struct {
		name string
		opts []TSAOption
		hash crypto.Hash
	}{
		{"EC-256 SHA-256", nil, crypto.SHA256},
		{"EC-256 SHA-384 imprint", nil, crypto.SHA384},
		{"EC-384 SHA-512 imprint", []TSAOption{TSAKeySpec("EC-384")}, crypto.SHA512},
		{"RSA-2048", []TSAOption{TSAKeySpec("RSA-2048")}, crypto.SHA256},
		{"with intermediate", []TSAOption{TSAIntermediate()}, crypto.SHA256},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := StartTSA(t, tc.opts...)
			before := time.Now().Add(-time.Second)
			tok, err := stamp(t, a, message, tc.hash, false)
			if err != nil {
				t.Fatalf("timestamp: %v", err)
			}
			ts, chain, err := verifyToken(tok, message, a.Root().Cert)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if ts.Value.Before(before) || ts.Value.After(time.Now()) || ts.Accuracy != 0 {
				t.Errorf("genTime %v ± %v, want now ± 0", ts.Value, ts.Accuracy)
			}
			if want := a.Chain(); len(chain) != len(want) || !chain[0].Equal(want[0]) || !chain[len(chain)-1].Equal(a.Root().Cert) {
				t.Errorf("verified chain of %d certificates, want %d from the TSA leaf to its root", len(chain), len(want))
			}
			if len(tok.Certificates) != len(a.Chain()) {
				t.Errorf("token carries %d certificates, want the chain of %d", len(tok.Certificates), len(a.Chain()))
			}
			// A token over one message does not validate another.
			info, _ := tok.Info()
			if _, err := info.Validate([]byte("other bytes")); err == nil || !strings.Contains(err.Error(), "mismatched message") {
				t.Errorf("other message: got %v, want mismatched message", err)
			}
			// The TSA chain passes notation-core-go's timestamping
			// revocation check (no OCSP or CRL: nothing to check).
			v := checkRevocation(t, purpose.Timestamping, a.chain...)
			if v[0].Result != result.ResultNonRevokable {
				t.Errorf("TSA leaf revocation: %v", v[0].Result)
			}
		})
	}
}

func TestTSANoCert(t *testing.T) {
	a := StartTSA(t)
	tok, err := stamp(t, a, []byte("m"), crypto.SHA256, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.Certificates) != 0 {
		t.Fatalf("certReq false: token carries %d certificates", len(tok.Certificates))
	}
	// Without certificates the token cannot be verified on its own.
	if _, _, err := verifyToken(tok, []byte("m"), a.Root().Cert); err == nil {
		t.Fatal("a token without certificates verified")
	}
}

func TestTSAInvalidTokens(t *testing.T) {
	message := []byte("signature")
	t.Run("broken signature", func(t *testing.T) {
		a := StartTSA(t)
		a.BreakSignature(true)
		tok, err := stamp(t, a, message, crypto.SHA256, false)
		if err != nil {
			t.Fatalf("the response itself is well formed: %v", err)
		}
		_, _, err = verifyToken(tok, message, a.Root().Cert)
		if err == nil || !strings.Contains(err.Error(), "cms verification failure") {
			t.Fatalf("got %v, want a signature verification error", err)
		}
		a.BreakSignature(false)
		if tok, err = stamp(t, a, message, crypto.SHA256, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := verifyToken(tok, message, a.Root().Cert); err != nil {
			t.Fatalf("after BreakSignature(false): %v", err)
		}
	})
	t.Run("wrong imprint", func(t *testing.T) {
		a := StartTSA(t)
		a.WrongImprint(true)
		_, err := stamp(t, a, message, crypto.SHA256, false)
		if err == nil || !strings.Contains(err.Error(), "message imprint in response") {
			t.Fatalf("timestamper: got %v, want an imprint mismatch", err)
		}
		der, err := a.Token(message, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tspclient.ParseSignedToken(der)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = verifyToken(tok, message, a.Root().Cert)
		if err == nil || !strings.Contains(err.Error(), "mismatched message") {
			t.Fatalf("got %v, want mismatched message", err)
		}
	})
	t.Run("untrusted root", func(t *testing.T) {
		a := StartTSA(t)
		tok, err := stamp(t, a, message, crypto.SHA256, false)
		if err != nil {
			t.Fatal(err)
		}
		other := Root(t, "some other root")
		if _, _, err := verifyToken(tok, message, other.Cert); err == nil || !strings.Contains(err.Error(), "unknown authority") {
			t.Fatalf("got %v, want unknown authority", err)
		}
	})
	t.Run("genTime outside the TSA validity", func(t *testing.T) {
		a := StartTSA(t)
		a.SetGenTime(func() time.Time { return time.Now().Add(-60 * 24 * time.Hour) })
		tok, err := stamp(t, a, message, crypto.SHA256, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := verifyToken(tok, message, a.Root().Cert); err == nil || !strings.Contains(err.Error(), "expired or is not yet valid") {
			t.Fatalf("got %v, want a validity error", err)
		}
	})
}

func TestTSAKnobs(t *testing.T) {
	message := []byte("signature")
	t.Run("genTime", func(t *testing.T) {
		a := StartTSA(t)
		at := time.Now().Add(-48 * time.Hour).Add(123 * time.Millisecond)
		a.SetGenTime(func() time.Time { return at })
		tok, err := stamp(t, a, message, crypto.SHA256, false)
		if err != nil {
			t.Fatal(err)
		}
		ts, _, err := verifyToken(tok, message, a.Root().Cert)
		if err != nil {
			t.Fatal(err)
		}
		if want := at.UTC().Truncate(time.Second); !ts.Value.Equal(want) {
			t.Errorf("genTime %v, want %v", ts.Value, want)
		}
		a.SetGenTime(nil)
		tok, _ = stamp(t, a, message, crypto.SHA256, false)
		if ts, _, _ := verifyToken(tok, message, a.Root().Cert); ts == nil || time.Since(ts.Value) > 5*time.Second {
			t.Errorf("SetGenTime(nil) did not restore the clock: %v", ts)
		}
	})
	t.Run("accuracy", func(t *testing.T) {
		a := StartTSA(t)
		a.SetAccuracy(2*time.Second + 345*time.Millisecond + 6*time.Microsecond)
		tok, err := stamp(t, a, message, crypto.SHA256, false)
		if err != nil {
			t.Fatal(err)
		}
		ts, _, err := verifyToken(tok, message, a.Root().Cert)
		if err != nil {
			t.Fatal(err)
		}
		if want := 2*time.Second + 345*time.Millisecond + 6*time.Microsecond; ts.Accuracy != want {
			t.Errorf("accuracy %v, want %v", ts.Accuracy, want)
		}
	})
	t.Run("baseline policy without accuracy", func(t *testing.T) {
		a := StartTSA(t, TSAPolicyID(BaselinePolicy))
		tok, err := stamp(t, a, message, crypto.SHA256, false)
		if err != nil {
			t.Fatal(err)
		}
		ts, _, err := verifyToken(tok, message, a.Root().Cert)
		if err != nil {
			t.Fatal(err)
		}
		if ts.Accuracy != time.Second {
			t.Errorf("accuracy %v, want the baseline default of 1s", ts.Accuracy)
		}
	})
	t.Run("down", func(t *testing.T) {
		a := StartTSA(t)
		a.SetDown(true)
		if _, err := stamp(t, a, message, crypto.SHA256, false); err == nil || !strings.Contains(err.Error(), "500") {
			t.Fatalf("got %v, want HTTP 500", err)
		}
		if a.Requests() != 1 {
			t.Errorf("requests %d, want 1", a.Requests())
		}
	})
}

// TestTSALeafRevoked revokes the TSA leaf at an OCSP responder of the TSA's
// root; notation-core-go's timestamping revocation check reports it.
func TestTSALeafRevoked(t *testing.T) {
	root := Root(t, "tsa root with ocsp")
	o := StartOCSP(t, root)
	a := StartTSA(t, TSARoot(root), TSALeafOptions(WithOCSP(o.URL())))
	if a.Root() != root {
		t.Fatal("TSARoot ignored")
	}
	res := checkRevocation(t, purpose.Timestamping, a.chain...)
	assertResult(t, res[0], result.ResultOK, result.RevocationMethodOCSP, "")
	o.Revoke(a.Leaf().Cert.SerialNumber, time.Now())
	res = checkRevocation(t, purpose.Timestamping, a.chain...)
	assertResult(t, res[0], result.ResultRevoked, result.RevocationMethodOCSP, "revoked")
}

// TestTSABadRequests sends queries the TSA must refuse.
func TestTSABadRequests(t *testing.T) {
	a := StartTSA(t)
	post := func(t *testing.T, contentType string, body []byte) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Post(a.URL(), contentType, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	rejected := func(t *testing.T, body []byte, want string) {
		t.Helper()
		resp, b := post(t, "application/timestamp-query", body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/timestamp-reply" {
			t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var r tspclient.Response
		if err := r.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if _, err := r.SignedToken(); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want a rejection with %q", err, want)
		}
	}
	t.Run("garbage", func(t *testing.T) {
		rejected(t, []byte("not DER"), "the data submitted has the wrong format")
	})
	t.Run("SHA-1 imprint", func(t *testing.T) {
		der, err := asn1.Marshal(timeStampReq{Version: 1, MessageImprint: messageImprint{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}},
			HashedMessage: make([]byte, 20),
		}})
		if err != nil {
			t.Fatal(err)
		}
		rejected(t, der, "unrecognized or unsupported Algorithm Identifier")
	})
	t.Run("short imprint", func(t *testing.T) {
		der, _ := asn1.Marshal(timeStampReq{Version: 1, MessageImprint: messageImprint{
			HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: oidSHA256}, HashedMessage: make([]byte, 31),
		}})
		rejected(t, der, "unrecognized or unsupported Algorithm Identifier")
	})
	t.Run("wrong content type", func(t *testing.T) {
		if resp, _ := post(t, "application/octet-stream", nil); resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("HTTP %d, want 415", resp.StatusCode)
		}
	})
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(a.URL())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("HTTP %d, want 405", resp.StatusCode)
		}
	})
}

// TestTSAsAreIndependent: one TSA's root does not verify another's token.
func TestTSAsAreIndependent(t *testing.T) {
	a, b := StartTSA(t), StartTSA(t)
	tok, err := stamp(t, a, []byte("m"), crypto.SHA256, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := verifyToken(tok, []byte("m"), b.Root().Cert); err == nil {
		t.Fatal("a token of one TSA verified against another TSA's root")
	}
}
