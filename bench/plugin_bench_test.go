// Package bench holds the benchmarks `make bench` runs. Each compares
// keyward with a reference run side by side in the same process and prints
// the ratio; none asserts a time.
package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/timing"
)

var rounds = flag.Int("rounds", 40, "rounds of each alternating comparison")

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// refBinary builds one of the reference programs of this folder.
func refBinary(b *testing.B, name string) string {
	b.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "keyward-bench-")
		for _, n := range []string{"minimalplugin", "trivial"} {
			if buildErr != nil {
				return
			}
			out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, n), "./"+n).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", n, err, out)
			}
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return filepath.Join(buildDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

type signFixture struct {
	dir, keyPath, chain string
}

func newSignFixture(b *testing.B) signFixture {
	b.Helper()
	dir := b.TempDir()
	root := testpki.Root(b, "bench root")
	key := testpki.Key(b, "EC-256", "bench")
	leaf := root.Leaf(b, "bench signer", testpki.WithKey(key))
	return signFixture{
		dir:     dir,
		keyPath: testpki.WriteFile(b, dir, "signing.key", testpki.KeyPEM(b, key), 0o600),
		chain:   testpki.WriteFile(b, dir, "chain.pem", testpki.CertsPEM(leaf.Cert, root.Cert), 0o644),
	}
}

// exchange runs a plugin process as notation does and returns its wall time.
func exchange(b *testing.B, bin, command string, req []byte) time.Duration {
	b.Helper()
	cmd := exec.Command(bin, command)
	cmd.Stdin = bytes.NewReader(req)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, io.Discard
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil || !json.Valid(out.Bytes()) {
		b.Fatalf("%s %s: %v, stdout %q", bin, command, err, out.String())
	}
	return d
}

// BenchmarkPluginCommands measures one plugin process per command (start,
// request, response) beside a Go process that only exchanges JSON: the ratio
// is keyward's own overhead per call.
func BenchmarkPluginCommands(b *testing.B) {
	keyward := testenv.PluginBinary(b)
	trivial := refBinary(b, "trivial")
	f := newSignFixture(b)
	cfg := map[string]string{"cert_chain": f.chain}
	keyID := "file:" + f.keyPath
	payload := []byte("eyJhbGciOiJFUzI1NiIsImNyaXQiOlsiaW8uY25jZi5ub3Rhcnkuc2lnbmluZ1NjaGVtZSJdfQ.eyJ0YXJnZXRBcnRpZmFjdCI6e319")
	requests := []struct {
		command string
		req     any
	}{
		{"get-plugin-metadata", map[string]any{"pluginConfig": cfg}},
		{"describe-key", map[string]any{"contractVersion": "1.0", "keyId": keyID, "pluginConfig": cfg}},
		{"generate-signature", map[string]any{"contractVersion": "1.0", "keyId": keyID, "keySpec": "EC-256",
			"hashAlgorithm": "SHA-256", "payload": payload, "pluginConfig": cfg}},
	}
	for i := 0; i < b.N; i++ {
		fmt.Printf("\nplugin process per command (median of %d alternating runs each)\n", *rounds*5)
		fmt.Printf("  %-20s %12s %12s %8s\n", "command", "keyward", "trivial Go", "ratio")
		for _, r := range requests {
			req, _ := json.Marshal(r.req)
			s := timing.Alternate(*rounds*5, []string{"keyward", "trivial"}, func(v string) time.Duration {
				if v == "keyward" {
					return exchange(b, keyward, r.command, req)
				}
				return exchange(b, trivial, r.command, req)
			})
			kw, tr := s["keyward"].Median(), s["trivial"].Median()
			fmt.Printf("  %-20s %12s %12s %7.2fx\n", r.command, timing.Ms(kw), timing.Ms(tr), float64(kw)/float64(tr))
			b.ReportMetric(float64(kw)/float64(tr), r.command+"-ratio")
		}
	}
}

// BenchmarkNotationSign times `notation sign` of an artifact in an OCI
// layout three ways, alternately: through keyward's plugin, through the
// minimal reference plugin, and with the same key as a notation local key.
func BenchmarkNotationSign(b *testing.B) {
	n := testenv.NewNotation(b)
	n.InstallPlugin(b, testenv.PluginBinary(b))
	minimal := refBinary(b, "minimalplugin")
	minimalDir := filepath.Join(n.ConfigDir, "plugins", "minimal")
	if err := os.MkdirAll(minimalDir, 0o755); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(minimal)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(minimalDir, "notation-minimal"), data, 0o755); err != nil {
		b.Fatal(err)
	}
	f := newSignFixture(b)
	// A notation local key: signingkeys.json naming the same key and chain.
	keysJSON := fmt.Sprintf(`{"keys":[{"name":"local","keyPath":%q,"certPath":%q}]}`, f.keyPath, f.chain)
	if err := os.WriteFile(filepath.Join(n.ConfigDir, "signingkeys.json"), []byte(keysJSON), 0o600); err != nil {
		b.Fatal(err)
	}
	variants := map[string][]string{
		"keyward plugin": {"--plugin", "keyward", "--id", "file:" + f.keyPath, "--plugin-config", "cert_chain=" + f.chain},
		"minimal plugin": {"--plugin", "minimal", "--id", "file:" + f.keyPath, "--plugin-config", "cert_chain=" + f.chain},
		"local key":      {"--key", "local"},
	}
	names := []string{"keyward plugin", "minimal plugin", "local key"}
	for i := 0; i < b.N; i++ {
		s := timing.Alternate(*rounds, names, func(v string) time.Duration {
			layout, digest := testenv.NewOCILayout(b, filepath.Join(b.TempDir(), "layout"))
			args := append([]string{"sign"}, variants[v]...)
			args = append(args, "--oci-layout", layout+"@"+digest)
			start := time.Now()
			n.MustRun(b, args...)
			return time.Since(start)
		})
		kw, mn, lk := s["keyward plugin"].Median(), s["minimal plugin"].Median(), s["local key"].Median()
		fmt.Printf("\nnotation sign, EC-256 file key, OCI layout (median of %d alternating runs each)\n", *rounds)
		for _, v := range names {
			fmt.Printf("  %-16s median %10s  p90 %10s\n", v, timing.Ms(s[v].Median()), timing.Ms(s[v].Quantile(0.9)))
		}
		fmt.Printf("  keyward / minimal plugin: %.2fx (target <= 1.15x: %s)\n", float64(kw)/float64(mn), verdict(float64(kw)/float64(mn) <= 1.15))
		fmt.Printf("  keyward / local key:      %.2fx\n", float64(kw)/float64(lk))
		fmt.Printf("  minimal / local key:      %.2fx (the cost of three plugin processes)\n", float64(mn)/float64(lk))
		b.ReportMetric(float64(kw)/float64(mn), "x-minimal")
		b.ReportMetric(float64(kw)/float64(lk), "x-localkey")
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
