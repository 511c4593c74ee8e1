package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
)

// TestRatifyVerdicts checks that keyward serve and `ratify serve` v1.4.0
// (standalone, its Gatekeeper external data provider, the same trust
// policy and root certificate) reach the same verdict for the same keys:
// an artifact signed by notation through keyward (by digest and by tag),
// an unsigned one, one signed by a key whose root neither trusts, one whose
// only signature has its envelope altered, one carrying another artifact's
// signature, and a tag moved after signing to a changed manifest; in a
// registry with the referrers API (olareg) and one without (distribution,
// the referrers tag schema). The expected verdicts are asserted too, so
// that two tools wrong alike do not pass.
func TestRatifyVerdicts(t *testing.T) {
	testenv.Tool(t, "ratify")
	for _, name := range []string{"olareg", "distribution"} {
		t.Run(name, func(t *testing.T) {
			var reg *testenv.Registry
			if name == "olareg" {
				reg = testenv.StartOlareg(t)
			} else {
				reg = testenv.StartDistribution(t)
			}
			w := newWorldOn(t, reg)
			sign := func(ref string) {
				args := []string{"sign", "--plugin", "keyward", "--id", w.keyID, "--plugin-config", "cert_chain=" + w.chain, "--insecure-registry"}
				if reg.Referrers {
					args = append(args, "--force-referrers-tag=false")
				}
				w.n.MustRun(t, append(args, ref)...)
			}
			push := func(repo string) string { ref, _ := testenv.PushArtifact(t, reg, repo); return ref }

			signed := push("team/signed")
			sign(signed)
			signedTag := tag(t, signed, "v1")
			unsigned := push("team/unsigned")

			untrusted := push("team/untrusted")
			other := testenv.NewNotation(t)
			other.InstallPlugin(t, testenv.PluginBinary(t))
			dir := t.TempDir()
			stranger := testpki.Root(t, "stranger root")
			skey := testpki.Key(t, "EC-256", "stranger")
			sleaf := stranger.Leaf(t, "serve signer", testpki.WithKey(skey))
			args := []string{"sign", "--plugin", "keyward", "--id", "file:" + testpki.WriteFile(t, dir, "k.pem", testpki.KeyPEM(t, skey), 0o600),
				"--plugin-config", "cert_chain=" + testpki.WriteFile(t, dir, "c.pem", testpki.CertsPEM(sleaf.Cert, stranger.Cert), 0o644),
				"--insecure-registry"}
			if reg.Referrers {
				args = append(args, "--force-referrers-tag=false")
			}
			other.MustRun(t, append(args, untrusted)...)

			tampered := push("team/tampered")
			sign(tampered)
			testenv.TamperSignature(t, reg, tampered)

			donor := push("team/moved")
			sign(donor)
			moved := push("team/moved")
			testenv.MoveSignature(t, reg, donor, moved)

			changed := push("team/changed")
			sign(changed)
			changedTag := tag(t, changed, "v1")
			tag(t, push("team/changed"), "v1") // the tag now names a manifest never signed

			cases := []struct {
				name, key string
				want      bool
			}{
				{"signed", signed, true},
				{"signed, by tag", signedTag, true},
				{"unsigned", unsigned, false},
				{"untrusted key", untrusted, false},
				{"envelope altered", tampered, false},
				{"another artifact's signature", moved, false},
				{"tag moved to a changed manifest", changedTag, false},
			}
			keys := make([]string, len(cases))
			for i, c := range cases {
				keys[i] = c.key
			}

			policy, err := os.ReadFile(w.policy)
			if err != nil {
				t.Fatal(err)
			}
			ratify := testenv.StartRatify(t, testenv.RatifyOptions{
				TrustPolicy: policy,
				Certs:       []string{filepath.Join(w.store, "x509", "ca", "serve")},
				PlainHTTP:   true,
				// Generous: the machine is shared and the keys are
				// verified concurrently.
				VerifyTimeout: 20 * time.Second,
			})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			client := &http.Client{Timeout: time.Minute}
			items, err := testenv.GatekeeperVerify(ctx, client, ratify.URL+testenv.RatifyVerifyPath, keys)
			if err != nil {
				t.Fatalf("ratify: %v\n--- %s:\n%s", err, ratify.Log, readTail(ratify.Log))
			}

			s, err := New(w.config(reg.Host), Options{})
			if err != nil {
				t.Fatal(err)
			}
			base, _ := serve(t, s)
			got := keywardVerdicts(t, ctx, client, base, keys)

			for i, c := range cases {
				rv, rerr := testenv.ParseRatifyValue(items[i])
				ratifyOK := rerr == nil && rv.IsSuccess
				why := ""
				if rerr != nil {
					why = rerr.Error()
				} else if !rv.IsSuccess {
					why = string(rv.VerifierReports)
				}
				t.Logf("%s: keyward %v (%s); ratify %v (%.300s)", c.name, got[i].verified, got[i].why, ratifyOK, why)
				if ratifyOK != c.want {
					t.Errorf("%s (%s): ratify isSuccess %v, want %v: %s", c.name, c.key, ratifyOK, c.want, why)
				}
				if got[i].verified != c.want {
					t.Errorf("%s (%s): keyward verified %v, want %v: %s", c.name, c.key, got[i].verified, c.want, got[i].why)
				}
				if got[i].verified != ratifyOK {
					t.Errorf("%s (%s): keyward verified %v, ratify isSuccess %v", c.name, c.key, got[i].verified, ratifyOK)
				}
			}
		})
	}
}

// verdict is keyward's answer for one key.
type verdict struct {
	verified bool
	why      string // the error, when not verified
}

// keywardVerdicts asks keyward serve at base for keys, through
// POST /v1/gatekeeper/verify with the very ProviderRequest Ratify gets (the
// item's value is a verify-result object, verified true or false, with
// Ratify's isSuccess beside it; an item error counts as not verified).
func keywardVerdicts(t *testing.T, ctx context.Context, client *http.Client, base string, keys []string) []verdict {
	t.Helper()
	out := make([]verdict, len(keys))
	items, err := testenv.GatekeeperVerify(ctx, client, base+"/v1/gatekeeper/verify", keys)
	if err != nil {
		t.Fatalf("keyward: %v", err)
	}
	for i, it := range items {
		if it.Error != "" {
			// An item error is no verdict: Gatekeeper denies on it.
			out[i] = verdict{why: "item error: " + it.Error}
			continue
		}
		var v struct {
			Verified  *bool `json:"verified"`
			IsSuccess *bool `json:"isSuccess"`
			Error     *struct{ Kind, Message string }
		}
		if err := json.Unmarshal(it.Value, &v); err != nil || v.Verified == nil {
			t.Fatalf("keyward item %q: value is not a verify result (%v): %s", it.Key, err, it.Value)
		}
		// Ratify's constraint templates read isSuccess: it must say what
		// verified says.
		if v.IsSuccess != nil && *v.IsSuccess != *v.Verified {
			t.Errorf("keyward item %q: verified %v but isSuccess %v", it.Key, *v.Verified, *v.IsSuccess)
		}
		out[i].verified = *v.Verified
		if v.Error != nil {
			out[i].why = v.Error.Kind + ": " + v.Error.Message
		}
	}
	return out
}

// readTail is the end of a log file, for failure messages.
func readTail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}
