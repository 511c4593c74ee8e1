//go:build cgo

// Package pkcs11bench holds the PKCS#11 benchmarks `make bench` runs
// (scripts/bench/pkcs11.sh): notation sign with a SoftHSM2 key against the
// same with a file key, alternately in one run, and the plugin's per-command
// latency with SoftHSM2 beside the floor, a process that only opens the
// token once. Each prints medians and ratios; none asserts a time.
package pkcs11bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/internal/timing"
	"github.com/keyward/keyward/keys/pkcs11key/pkcs11test"
)

var rounds = flag.Int("rounds", 30, "rounds of each alternating comparison")

// fixture is an EC-256 key on a SoftHSM2 token and an EC-256 file key, each
// with a leaf certificate from one root, and their chain files.
type fixture struct {
	hsm        *testenv.SoftHSM
	root       *testpki.Cert
	tokenKeyID string // chain from the token
	tokenChain string // the token key's chain as a file
	fileKeyID  string
	fileChain  string
	pin        string // PIN file
}

func newFixture(b *testing.B) *fixture {
	b.Helper()
	hsm := testenv.NewSoftHSM(b, "bench")
	b.Setenv("SOFTHSM2_CONF", hsm.Conf)
	tok := pkcs11test.Token{Module: hsm.Module, Label: hsm.Label, PIN: hsm.PIN}
	dir := b.TempDir()
	f := &fixture{hsm: hsm, root: testpki.Root(b, "bench root")}
	pub := tok.GenerateKey(b, "EC-256", "bench", []byte{1})
	leaf := f.root.Leaf(b, "bench token signer", testpki.WithPublicKey(pub))
	tok.StoreCertificate(b, leaf.Cert, "bench", []byte{1})
	tok.StoreCertificate(b, f.root.Cert, "root", nil)
	f.pin = testpki.WriteFile(b, dir, "pin", []byte(hsm.PIN), 0o600)
	f.tokenKeyID = fmt.Sprintf("pkcs11:token=%s;object=bench?module-path=%s&pin-source=file:%s", url.PathEscape(hsm.Label), hsm.Module, f.pin)
	f.tokenChain = testpki.WriteFile(b, dir, "token-chain.pem", testpki.CertsPEM(leaf.Cert, f.root.Cert), 0o644)
	key := testpki.Key(b, "EC-256", "bench file")
	fileLeaf := f.root.Leaf(b, "bench file signer", testpki.WithKey(key))
	f.fileKeyID = "file:" + testpki.WriteFile(b, dir, "file.key", testpki.KeyPEM(b, key), 0o600)
	f.fileChain = testpki.WriteFile(b, dir, "file-chain.pem", testpki.CertsPEM(fileLeaf.Cert, f.root.Cert), 0o644)
	return f
}

// BenchmarkNotationSignPKCS11 times notation sign of a fresh artifact in an
// OCI layout with the SoftHSM2 key (chain read from the token, and chain
// from a cert_chain file) and with a file key, alternately.
func BenchmarkNotationSignPKCS11(b *testing.B) {
	f := newFixture(b)
	n := testenv.NewNotation(b)
	n.Env = append(n.Env, "SOFTHSM2_CONF="+f.hsm.Conf) // only the token config: keep notation isolated
	n.InstallPlugin(b, testenv.PluginBinary(b))
	variants := map[string][]string{
		"file key":               {"--id", f.fileKeyID, "--plugin-config", "cert_chain=" + f.fileChain},
		"token, chain on token":  {"--id", f.tokenKeyID},
		"token, cert_chain file": {"--id", f.tokenKeyID, "--plugin-config", "cert_chain=" + f.tokenChain},
	}
	names := []string{"file key", "token, chain on token", "token, cert_chain file"}
	for i := 0; i < b.N; i++ {
		s := timing.Alternate(*rounds, names, func(v string) time.Duration {
			layout, digest := testenv.NewOCILayout(b, filepath.Join(b.TempDir(), "layout"))
			args := append([]string{"sign", "--plugin", "keyward"}, variants[v]...)
			args = append(args, "--oci-layout", layout+"@"+digest)
			start := time.Now()
			n.MustRun(b, args...)
			return time.Since(start)
		})
		fmt.Printf("\nnotation sign --plugin keyward, EC-256, OCI layout (median of %d alternating runs each)\n", *rounds)
		for _, v := range names {
			fmt.Printf("  %-24s median %9s  p90 %9s\n", v, timing.Ms(s[v].Quantile(0.5)), timing.Ms(s[v].Quantile(0.9)))
		}
		file := s["file key"].Quantile(0.5)
		for _, v := range names[1:] {
			r := float64(s[v].Quantile(0.5)) / float64(file)
			fmt.Printf("  %s / file key: %.2fx (target <= 1.40x: %s)\n", v, r, verdict(r <= 1.4))
			b.ReportMetric(r, "x-file-"+map[string]string{names[1]: "tokenchain", names[2]: "certchain"}[v])
		}
	}
}

// BenchmarkPluginCommandsPKCS11 measures one plugin process per command, as
// notation runs it, with the SoftHSM2 key and with the file key, beside the
// floor: a process that loads the module, finds the key and (for signing)
// logs in and signs once, and nothing else.
func BenchmarkPluginCommandsPKCS11(b *testing.B) {
	f := newFixture(b)
	plugin := testenv.PluginBinary(b)
	floor := filepath.Join(b.TempDir(), "floor")
	if out, err := exec.Command("go", "build", "-o", floor, "./floor").CombinedOutput(); err != nil {
		b.Fatalf("build the floor program: %v\n%s", err, out)
	}
	// Public keys remembered for describe-key go to a temporary cache;
	// "/proc/nonexistent" is a cache that can never be written.
	env := append(append([]string(nil), f.hsm.Env...), "XDG_CACHE_HOME="+b.TempDir())
	noCacheEnv := append(append([]string(nil), f.hsm.Env...), "XDG_CACHE_HOME=/proc/nonexistent")
	floorEnv := append(append([]string(nil), f.hsm.Env...), "KEYWARD_PKCS11_PIN="+f.hsm.PIN)
	payload := []byte("eyJhbGciOiJFUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319")
	type variant struct {
		name   string
		keyID  string
		config map[string]string
	}
	keys := []variant{
		{"file key", f.fileKeyID, map[string]string{"cert_chain": f.fileChain}},
		{"token, chain on token", f.tokenKeyID, nil},
		{"token, cert_chain file", f.tokenKeyID, map[string]string{"cert_chain": f.tokenChain}},
	}
	request := func(command string, v variant) []byte {
		var req any
		switch command {
		case "get-plugin-metadata":
			req = map[string]any{"pluginConfig": v.config}
		case "describe-key":
			req = map[string]any{"contractVersion": "1.0", "keyId": v.keyID, "pluginConfig": v.config}
		default:
			req = map[string]any{"contractVersion": "1.0", "keyId": v.keyID, "keySpec": "EC-256", "hashAlgorithm": "SHA-256",
				"payload": payload, "pluginConfig": v.config}
		}
		data, _ := json.Marshal(req)
		return data
	}
	floorArgs := map[string][]string{
		"floor: open token":               {"-module", f.hsm.Module, "-token", f.hsm.Label, "-label", "bench"},
		"floor: open token, log in, sign": {"-module", f.hsm.Module, "-token", f.hsm.Label, "-label", "bench", "-sign"},
	}
	for i := 0; i < b.N; i++ {
		var names []string
		for _, c := range []string{"get-plugin-metadata", "describe-key", "generate-signature"} {
			for _, k := range keys {
				names = append(names, c+" / "+k.name)
			}
		}
		names = append(names, "describe-key / token, chain on token, nothing remembered", "floor: open token", "floor: open token, log in, sign")
		s := timing.Alternate(*rounds*3, names, func(v string) time.Duration {
			if args, ok := floorArgs[v]; ok {
				return exchange(b, floorEnv, floor, args, nil)
			}
			if v == "describe-key / token, chain on token, nothing remembered" {
				return exchange(b, noCacheEnv, plugin, []string{"describe-key"}, request("describe-key", keys[1]))
			}
			for _, c := range []string{"get-plugin-metadata", "describe-key", "generate-signature"} {
				for _, k := range keys {
					if v == c+" / "+k.name {
						return exchange(b, env, plugin, []string{c}, request(c, k))
					}
				}
			}
			b.Fatalf("unknown variant %q", v)
			return 0
		})
		fmt.Printf("\nnotation-keyward per command, EC-256, SoftHSM2 (median and p90 of %d alternating runs each)\n", *rounds*3)
		for _, v := range names {
			fmt.Printf("  %-58s %9s  p90 %9s\n", v, timing.Ms(s[v].Quantile(0.5)), timing.Ms(s[v].Quantile(0.9)))
		}
		med := func(v string) float64 { return float64(s[v].Quantile(0.5)) }
		fmt.Printf("  describe-key, chain on token / file key:            %.2fx\n", med("describe-key / token, chain on token")/med("describe-key / file key"))
		fmt.Printf("  describe-key, nothing remembered / floor open:      %.2fx\n", med("describe-key / token, chain on token, nothing remembered")/med("floor: open token"))
		fmt.Printf("  describe-key, cert_chain / file key describe-key:   %.2fx\n", med("describe-key / token, cert_chain file")/med("describe-key / file key"))
		fmt.Printf("  generate-signature, chain on token / floor sign:    %.2fx\n", med("generate-signature / token, chain on token")/med("floor: open token, log in, sign"))
		fmt.Printf("  generate-signature, cert_chain / floor sign:        %.2fx\n", med("generate-signature / token, cert_chain file")/med("floor: open token, log in, sign"))
		b.ReportMetric(med("generate-signature / token, chain on token")/med("floor: open token, log in, sign"), "x-floor-sign")
	}
}

// exchange runs a process with req on its standard input and returns its
// wall time.
func exchange(b *testing.B, env []string, bin string, args []string, req []byte) time.Duration {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdin = bytes.NewReader(req)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil || !json.Valid(out.Bytes()) {
		b.Fatalf("%s %v: %v, stdout %q, stderr %q", filepath.Base(bin), args, err, out.String(), errb.String())
	}
	return d
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
