package filekey_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyward/keyward/internal/testpki"
	"github.com/keyward/keyward/keys"
	"github.com/keyward/keyward/keys/filekey"
)

// fixture is a key with its chain written to a temporary directory.
type fixture struct {
	dir      string
	key      crypto.Signer
	keyPath  string
	chainPEM []byte
	chain    string
}

func newFixture(t *testing.T, spec string) *fixture {
	t.Helper()
	dir := t.TempDir()
	root := testpki.Root(t, "filekey root")
	key := testpki.Key(t, spec, "filekey")
	leaf := root.Leaf(t, "filekey leaf "+spec, testpki.WithKey(key))
	chainPEM := testpki.CertsPEM(leaf.Cert, root.Cert)
	return &fixture{
		dir:      dir,
		key:      key,
		keyPath:  testpki.WriteFile(t, dir, "key.pem", testpki.KeyPEM(t, key), 0o600),
		chainPEM: chainPEM,
		chain:    testpki.WriteFile(t, dir, "chain.pem", chainPEM, 0o644),
	}
}

func open(t *testing.T, keyID string, cfg keys.Config, env map[string]string) (*keys.Key, error) {
	t.Helper()
	b := filekey.Backend{Getenv: func(k string) string { return env[k] }}
	return keys.NewOpener(b).Open(context.Background(), keyID, cfg)
}

func mustOpen(t *testing.T, keyID string, cfg keys.Config, env map[string]string) *keys.Key {
	t.Helper()
	k, err := open(t, keyID, cfg, env)
	if err != nil {
		t.Fatalf("Open(%q) = %v", keyID, err)
	}
	return k
}

// TestEncodings opens every supported PEM encoding of every key spec and
// checks the key is the one written.
func TestEncodings(t *testing.T) {
	for _, spec := range []string{"RSA-2048", "RSA-3072", "RSA-4096", "EC-256", "EC-384", "EC-521"} {
		f := newFixture(t, spec)
		encodings := map[string][]byte{"PKCS#8": testpki.KeyPEM(t, f.key)}
		switch k := f.key.(type) {
		case *rsa.PrivateKey:
			encodings["PKCS#1"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		case *ecdsa.PrivateKey:
			der, err := x509.MarshalECPrivateKey(k)
			if err != nil {
				t.Fatal(err)
			}
			// openssl ecparam -genkey writes an EC PARAMETERS block first.
			params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x01, 0x00}})
			encodings["SEC1"] = append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
		}
		for name, data := range encodings {
			t.Run(spec+"/"+name, func(t *testing.T) {
				p := testpki.WriteFile(t, f.dir, name+".pem", data, 0o600)
				k := mustOpen(t, "file:"+p, keys.Config{"cert_chain": f.chain}, nil)
				if !f.key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Signer.Public()) {
					t.Fatal("opened key differs from the key written")
				}
				s, err := k.Spec()
				if err != nil || s.Name != spec {
					t.Fatalf("Spec() = %v, %v; want %s", s.Name, err, spec)
				}
				if len(k.Chain) != 2 || !strings.Contains(k.ChainSource, f.chain) {
					t.Fatalf("chain = %d certs from %q", len(k.Chain), k.ChainSource)
				}
			})
		}
	}
}

func TestKeyIDForms(t *testing.T) {
	f := newFixture(t, "EC-256")
	spaced := filepath.Join(f.dir, "with space")
	if err := os.Mkdir(spaced, 0o700); err != nil {
		t.Fatal(err)
	}
	testpki.WriteFile(t, spaced, "k.pem", testpki.KeyPEM(t, f.key), 0o600)
	for _, id := range []string{
		"file:" + f.keyPath,
		"file://" + f.keyPath,
		"file://localhost" + f.keyPath,
		"FILE:" + f.keyPath,
		"file://" + strings.ReplaceAll(spaced, " ", "%20") + "/k.pem",
		"file:" + spaced + "/k.pem",
	} {
		t.Run(id, func(t *testing.T) {
			mustOpen(t, id, keys.Config{"cert_chain": f.chain}, nil)
		})
	}
}

// TestOpenErrors asserts the kind and the message parts of every refusal.
func TestOpenErrors(t *testing.T) {
	f := newFixture(t, "EC-256")
	other := newFixture(t, "EC-384")
	cfg := keys.Config{"cert_chain": f.chain}
	loose := testpki.WriteFile(t, f.dir, "loose.pem", testpki.KeyPEM(t, f.key), 0o644)
	groupOnly := testpki.WriteFile(t, f.dir, "group.pem", testpki.KeyPEM(t, f.key), 0o640)
	legacy := testpki.WriteFile(t, f.dir, "legacy.pem", []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), 0o600)
	certOnly := testpki.WriteFile(t, f.dir, "certonly.pem", f.chainPEM, 0o600)
	der := testpki.WriteFile(t, f.dir, "key.der", []byte{0x30, 0x82, 0x01, 0x00, 0x02}, 0o600)
	twoKeys := testpki.WriteFile(t, f.dir, "two.pem", append(testpki.KeyPEM(t, f.key), testpki.KeyPEM(t, other.key)...), 0o600)
	pub := testpki.WriteFile(t, f.dir, "pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}}), 0o600)
	chainWithKey := testpki.WriteFile(t, f.dir, "chainkey.pem", append(f.chainPEM, testpki.KeyPEM(t, f.key)...), 0o644)
	garbageChain := testpki.WriteFile(t, f.dir, "garbage.pem", []byte("not pem"), 0o644)
	fifo := filepath.Join(f.dir, "fifo.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name  string
		keyID string
		cfg   keys.Config
		env   map[string]string
		kind  keys.ErrorKind
		want  []string
	}{
		{"relative path", "file:key.pem", cfg, nil, keys.KindInvalid, []string{`"file:key.pem"`, "absolute path"}},
		{"empty path", "file:", cfg, nil, keys.KindInvalid, []string{"absolute path"}},
		{"remote host", "file://example.com/k.pem", cfg, nil, keys.KindInvalid, []string{`host "example.com"`, "only local files"}},
		{"query", "file://" + f.keyPath + "?x=1", cfg, nil, keys.KindInvalid, []string{"query or fragment"}},
		{"unknown scheme", "vault:k", cfg, nil, keys.KindInvalid, []string{`key id "vault:k" is not supported`, "file:"}},
		{"missing key", "file:" + f.dir + "/nope.pem", cfg, nil, keys.KindInvalid, []string{"key file", "nope.pem", "does not exist"}},
		{"directory", "file:" + f.dir, cfg, nil, keys.KindInvalid, []string{"not a regular file"}},
		{"FIFO key (must not hang)", "file:" + fifo, cfg, nil, keys.KindInvalid, []string{"fifo.pem", "not a regular file"}},
		{"FIFO chain (must not hang)", "file:" + f.keyPath, keys.Config{"cert_chain": fifo}, nil, keys.KindInvalid, []string{"cert_chain file", "not a regular file"}},
		{"readable by others", "file:" + loose, cfg, nil, keys.KindInvalid, []string{"loose.pem", "mode 0644", "chmod 600"}},
		{"readable by group", "file:" + groupOnly, cfg, nil, keys.KindInvalid, []string{"mode 0640", "chmod 600"}},
		{"legacy encryption", "file:" + legacy, cfg, nil, keys.KindInvalid, []string{"legacy PEM encryption", "openssl pkcs8 -topk8"}},
		{"certificate only", "file:" + certOnly, cfg, nil, keys.KindInvalid, []string{"holds no PEM private key"}},
		{"DER key", "file:" + der, cfg, nil, keys.KindInvalid, []string{"is not PEM", "-inform DER"}},
		{"two keys", "file:" + twoKeys, cfg, nil, keys.KindInvalid, []string{"more than one private key"}},
		{"public key block", "file:" + pub, cfg, nil, keys.KindInvalid, []string{`"PUBLIC KEY"`, "not a private key"}},
		{"no cert_chain", "file:" + f.keyPath, keys.Config{}, nil, keys.KindInvalid, []string{"cert_chain=<absolute path"}},
		{"relative cert_chain", "file:" + f.keyPath, keys.Config{"cert_chain": "chain.pem"}, nil, keys.KindInvalid, []string{`cert_chain="chain.pem"`, "absolute path"}},
		{"missing cert_chain", "file:" + f.keyPath, keys.Config{"cert_chain": f.dir + "/none.pem"}, nil, keys.KindInvalid, []string{"none.pem", "does not exist"}},
		{"cert_chain with a key", "file:" + f.keyPath, keys.Config{"cert_chain": chainWithKey}, nil, keys.KindInvalid, []string{"holds a private key"}},
		{"cert_chain not PEM", "file:" + f.keyPath, keys.Config{"cert_chain": garbageChain}, nil, keys.KindInvalid, []string{"holds no PEM certificate"}},
		{"chain of another key", "file:" + f.keyPath, keys.Config{"cert_chain": other.chain}, nil, keys.KindInvalid, []string{"certifies another key"}},
		{"unknown config key", "file:" + f.keyPath, keys.Config{"cert_chain": f.chain, "certchain": "x"}, nil, keys.KindInvalid, []string{`"certchain"`, "supported keys are cert_chain, passphrase_env, passphrase_file"}},
		{"passphrase for a plain key", "file:" + f.keyPath, keys.Config{"cert_chain": f.chain, "passphrase_env": "P"}, map[string]string{"P": "x"}, keys.KindInvalid, []string{"not encrypted but a passphrase is configured"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := open(t, tc.keyID, tc.cfg, tc.env)
			if err == nil {
				t.Fatal("Open() = nil error")
			}
			if !isKind(err, tc.kind) {
				t.Errorf("error kind is not %v: %v", tc.kind, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

// openssl returns the openssl binary. It is part of every machine this
// project builds on; a missing one fails under CI.
func openssl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed; encrypted keys are written with it")
	}
	return p
}

// TestEncryptedPKCS8 encrypts keys with the real openssl CLI, with each
// PBES2 variant it offers, and opens them with the passphrase from a file
// and from the environment.
func TestEncryptedPKCS8(t *testing.T) {
	bin := openssl(t)
	f := newFixture(t, "EC-384")
	const secret = "correct horse battery staple"
	passFile := testpki.WriteFile(t, f.dir, "pass.txt", []byte(secret+"\n"), 0o600)
	variants := map[string][]string{
		"aes-256-cbc hmacWithSHA256": {"-v2", "aes-256-cbc"},
		"aes-128-cbc hmacWithSHA1":   {"-v2", "aes-128-cbc", "-v2prf", "hmacWithSHA1"},
		"aes-192-cbc hmacWithSHA512": {"-v2", "aes-192-cbc", "-v2prf", "hmacWithSHA512"},
		"des3":                       {"-v2", "des3"},
		"scrypt":                     {"-scrypt"},
	}
	for name, args := range variants {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(f.dir, strings.ReplaceAll(name, " ", "_")+".pem")
			cmd := exec.Command(bin, append([]string{"pkcs8", "-topk8", "-in", f.keyPath, "-out", out, "-passout", "file:" + passFile}, args...)...)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("openssl: %v\n%s", err, b)
			}
			if err := os.Chmod(out, 0o600); err != nil {
				t.Fatal(err)
			}
			id := "file:" + out
			k := mustOpen(t, id, keys.Config{"cert_chain": f.chain, "passphrase_file": passFile}, nil)
			if !f.key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Signer.Public()) {
				t.Fatal("decrypted key differs")
			}
			mustOpen(t, id, keys.Config{"cert_chain": f.chain, "passphrase_env": "KW_PASS"}, map[string]string{"KW_PASS": secret})

			_, err := open(t, id, keys.Config{"cert_chain": f.chain, "passphrase_env": "KW_PASS"}, map[string]string{"KW_PASS": "wrong"})
			if !isKind(err, keys.KindAccessDenied) || !strings.Contains(err.Error(), "passphrase is wrong") {
				t.Errorf("wrong passphrase: %v (kind %v), want an access-denied error", err, keys.KindOf(err))
			}
			if err != nil && strings.Contains(err.Error(), "wrong\"") {
				t.Errorf("the error shows the passphrase: %v", err)
			}
			_, err = open(t, id, keys.Config{"cert_chain": f.chain}, nil)
			if !isKind(err, keys.KindInvalid) || !strings.Contains(err.Error(), "passphrase_file=") {
				t.Errorf("no passphrase: %v, want a message naming passphrase_file", err)
			}
		})
	}

	out := filepath.Join(f.dir, "enc.pem")
	if b, err := exec.Command(bin, "pkcs8", "-topk8", "-in", f.keyPath, "-out", out, "-passout", "file:"+passFile, "-v2", "aes-256-cbc").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, b)
	}
	if err := os.Chmod(out, 0o600); err != nil {
		t.Fatal(err)
	}
	looseFile := testpki.WriteFile(t, f.dir, "loosepass.txt", []byte(secret), 0o644)
	emptyFile := testpki.WriteFile(t, f.dir, "empty.txt", []byte("\n"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  keys.Config
		env  map[string]string
		want string
	}{
		{"passphrase file readable by others", keys.Config{"passphrase_file": looseFile}, nil, "chmod 600"},
		{"empty passphrase file", keys.Config{"passphrase_file": emptyFile}, nil, "is empty"},
		{"relative passphrase file", keys.Config{"passphrase_file": "pass.txt"}, nil, "absolute path"},
		{"unset variable", keys.Config{"passphrase_env": "KW_UNSET"}, nil, "KW_UNSET"},
		{"value instead of a name", keys.Config{"passphrase_env": "my secret"}, nil, "not an environment variable name"},
		{"both sources", keys.Config{"passphrase_env": "A", "passphrase_file": passFile}, nil, "keep one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg["cert_chain"] = f.chain
			_, err := open(t, "file:"+out, tc.cfg, tc.env)
			if !isKind(err, keys.KindInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open() = %v, want an invalid-config error containing %q", err, tc.want)
			}
		})
	}
}

func TestSignMessage(t *testing.T) {
	for _, spec := range []string{"RSA-2048", "RSA-3072", "RSA-4096", "EC-256", "EC-384", "EC-521"} {
		t.Run(spec, func(t *testing.T) {
			f := newFixture(t, spec)
			k := mustOpen(t, "file:"+f.keyPath, keys.Config{"cert_chain": f.chain}, nil)
			s, _ := k.Spec()
			msg := []byte("eyJhbGciOiJFUzI1NiJ9.eyJ0YXJnZXRBcnRpZmFjdCI6e319")
			sig, err := k.SignMessage(msg)
			if err != nil {
				t.Fatal(err)
			}
			h := s.Hash.New()
			h.Write(msg)
			digest := h.Sum(nil)
			switch pub := k.Signer.Public().(type) {
			case *rsa.PublicKey:
				// go-cose verifies PSS with the salt length equal to the hash.
				if err := rsa.VerifyPSS(pub, s.Hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
					t.Fatalf("RSASSA-PSS verify with salt = hash length: %v", err)
				}
			case *ecdsa.PublicKey:
				size := (pub.Curve.Params().BitSize + 7) / 8
				if len(sig) != 2*size {
					t.Fatalf("ECDSA signature is %d bytes, want raw r||s of %d", len(sig), 2*size)
				}
				r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
				if !ecdsa.Verify(pub, digest, r, s) {
					t.Fatal("ECDSA r||s signature does not verify")
				}
			}
		})
	}
}

// TestDescribe checks the cheap path describe-key takes: the leaf's key,
// with the key file checked for existence and permissions but not read.
func TestDescribe(t *testing.T) {
	f := newFixture(t, "RSA-3072")
	b := filekey.Backend{Getenv: func(string) string { return "" }}
	spec, err := keys.NewOpener(b).Describe(context.Background(), "file:"+f.keyPath, keys.Config{"cert_chain": f.chain})
	if err != nil || spec.Name != "RSA-3072" {
		t.Fatalf("Describe() = %v, %v; want RSA-3072", spec.Name, err)
	}
	loose := testpki.WriteFile(t, f.dir, "loose.pem", []byte("not even a key"), 0o644)
	for _, tc := range []struct {
		name, keyID string
		cfg         keys.Config
		want        string
	}{
		{"missing key file", "file:" + f.dir + "/none.pem", keys.Config{"cert_chain": f.chain}, "does not exist"},
		{"key readable by others", "file:" + loose, keys.Config{"cert_chain": f.chain}, "chmod 600"},
		{"no chain", "file:" + f.keyPath, keys.Config{}, "cert_chain="},
		{"unknown config", "file:" + f.keyPath, keys.Config{"cert_chain": f.chain, "x": "y"}, `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keys.NewOpener(b).Describe(context.Background(), tc.keyID, tc.cfg)
			if !isKind(err, keys.KindInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Describe() = %v, want an invalid-key error containing %q", err, tc.want)
			}
		})
	}
}

// isKind reports whether err's chain holds a [*keys.Error] of the kind.
func isKind(err error, kind keys.ErrorKind) bool {
	var ke *keys.Error
	return errors.As(err, &ke) && ke.Kind == kind
}
