package bench

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/timing"
)

// BenchmarkNotationVerifyPlugin times `notation verify` of one signature
// on an OCI layout two ways, alternately (issue 11's goal: at most 1.35x):
// a signature made with verification_plugin=true, which notation hands to
// keyward as its verification plugin (two more process starts), and the
// same artifact's signature made without it, which notation judges itself.
// Both are judged against the same x509.subject identity.
func BenchmarkNotationVerifyPlugin(b *testing.B) {
	n := testenv.NewNotation(b)
	n.InstallPlugin(b, testenv.PluginBinary(b))
	dir := b.TempDir()
	root := testpki.Root(b, "bench verify root")
	key := testpki.Key(b, "EC-256", "bench verify")
	leaf := root.Leaf(b, "bench signer", testpki.WithKey(key))
	f := signFixture{
		dir:     dir,
		keyPath: testpki.WriteFile(b, dir, "signing.key", testpki.KeyPEM(b, key), 0o600),
		chain:   testpki.WriteFile(b, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644),
	}
	n.AddTrustStore(b, "ca", "bench", root.Cert)
	policy, _ := json.Marshal(map[string]any{
		"version": "1.0",
		"trustPolicies": []map[string]any{{
			"name": "bench", "registryScopes": []string{"local/layout"},
			"signatureVerification": map[string]string{"level": "strict"},
			"trustStores":           []string{"ca:bench"},
			"trustedIdentities":     []string{"x509.subject: C=US, ST=WA, O=keyward-test, CN=bench signer"},
		}},
	})
	n.SetTrustPolicy(b, policy)
	refs := map[string]string{}
	for v, extra := range map[string][]string{
		"keyward as verification plugin": {"--plugin-config", "verification_plugin=true"},
		"notation's native path":         nil,
	} {
		layout, digest := testenv.NewOCILayout(b, filepath.Join(b.TempDir(), "layout"))
		args := append([]string{"sign", "--plugin", "keyward", "--id", "file:" + f.keyPath, "--plugin-config", "cert_chain=" + f.chain,
			"--plugin-config", "signing_mode=envelope"}, extra...)
		n.MustRun(b, append(args, "--oci-layout", layout+"@"+digest)...)
		refs[v] = layout + "@" + digest
	}
	names := []string{"keyward as verification plugin", "notation's native path"}
	for i := 0; i < b.N; i++ {
		s := timing.Alternate(*rounds, names, func(v string) time.Duration {
			start := time.Now()
			n.MustRun(b, "verify", "--oci-layout", "--scope", "local/layout", refs[v])
			return time.Since(start)
		})
		kw, native := s[names[0]].Median(), s[names[1]].Median()
		fmt.Printf("\nnotation verify, one signature, OCI layout (median of %d alternating runs each)\n", *rounds)
		for _, v := range names {
			fmt.Printf("  %-32s median %10s  p90 %10s\n", v, timing.Ms(s[v].Median()), timing.Ms(s[v].Quantile(0.9)))
		}
		ratio := float64(kw) / float64(native)
		fmt.Printf("  plugin / native: %.2fx (target <= 1.35x: %s)\n", ratio, verdict(ratio <= 1.35))
		b.ReportMetric(ratio, "x-native")
	}
}
