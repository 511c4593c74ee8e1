package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/notaryproject/notation-go/dir"
	"github.com/notaryproject/notation-go/verifier/truststore"

	"github.com/keyward/keyward/internal/testpki"
)

// storeCase builds one named store under <config>/truststore/x509.
type storeCase struct {
	name  string
	ref   StoreRef
	build func(t *testing.T, path string) // path is the store folder (not created)
	kind  StoreErrorKind                  // "" when the store loads
	certs int
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func storeCases(t *testing.T) []storeCase {
	root := testpki.Root(t, "store-root")
	inter := root.Intermediate(t, "store-intermediate")
	leaf := inter.Leaf(t, "store-leaf")
	self := testpki.SelfSignedLeaf(t, "store-self-signed")
	tsaRoot := testpki.Root(t, "store-tsa-root")
	pemOf := func(cs ...*testpki.Cert) []byte { return testpki.CertsPEM(testpki.Chain(cs...)...) }
	ca := func(name string) StoreRef { return StoreRef{Type: StoreCA, Name: name} }
	return []storeCase{
		{"pem root", ca("pem"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "root.pem"), pemOf(root)) }, "", 1},
		{"der root, any extension", ca("der"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "root.bin"), root.Cert.Raw) }, "", 1},
		{"several files and certificates", ca("multi"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "a.crt"), pemOf(root, inter))
			writeFile(t, filepath.Join(p, "b.der"), append(append([]byte{}, root.Cert.Raw...), inter.Cert.Raw...))
		}, "", 4},
		{"self-signed leaf", ca("self"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "leaf.crt"), pemOf(self)) }, "", 1},
		{"issued leaf", ca("leaf"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "leaf.crt"), pemOf(root, leaf)) }, StoreNotCA, 0},
		{"missing", ca("missing"), func(*testing.T, string) {}, StoreNotFound, 0},
		{"empty folder", ca("empty"), func(t *testing.T, p string) { mkdir(t, p) }, StoreEmpty, 0},
		{"store is a file", ca("file"), func(t *testing.T, p string) { writeFile(t, p, pemOf(root)) }, StoreNotDirectory, 0},
		{"store is a symlink", ca("link"), func(t *testing.T, p string) {
			real := p + "-real"
			writeFile(t, filepath.Join(real, "root.crt"), pemOf(root))
			if err := os.Symlink(real, p); err != nil {
				t.Fatal(err)
			}
		}, StoreNotDirectory, 0},
		{"symlinked certificate", ca("filelink"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "..", "outside.crt"), pemOf(root))
			mkdir(t, p)
			if err := os.Symlink(filepath.Join(p, "..", "outside.crt"), filepath.Join(p, "root.crt")); err != nil {
				t.Fatal(err)
			}
		}, StoreNotRegular, 0},
		{"sub-folder", ca("subdir"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "root.crt"), pemOf(root))
			writeFile(t, filepath.Join(p, "old", "root.crt"), pemOf(root))
		}, StoreNotRegular, 0},
		{"garbage", ca("garbage"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "x.crt"), []byte("not a certificate")) }, StoreBadCertFile, 0},
		{"private key block", ca("key"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "x.pem"), append(pemOf(root), testpki.KeyPEM(t, root.Key)...))
		}, StoreBadCertFile, 0},
		{"empty file", ca("emptyfile"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "x.crt"), nil) }, StoreNotCA, 0},
		{"tsa root", StoreRef{StoreTSA, "tsa"}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "tsa.crt"), pemOf(tsaRoot)) }, "", 1},
		{"tsa intermediate", StoreRef{StoreTSA, "tsainter"}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "i.crt"), pemOf(inter)) }, StoreTSANotRoot, 0},
		{"signing authority", StoreRef{StoreSigningAuthority, "sa"}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "r.crt"), pemOf(root)) }, "", 1},
		{"bad name", ca("bad name"), func(*testing.T, string) {}, StoreBadReference, 0},
		{"bad type", StoreRef{"CA", "x"}, func(*testing.T, string) {}, StoreBadReference, 0},
	}
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestTrustStoreMatchesNotation loads every store with keyward and with
// notation-go v1.3.2's X509TrustStore: both accept the same stores with the
// same certificates, and refuse the others with the same message.
func TestTrustStoreMatchesNotation(t *testing.T) {
	config := t.TempDir()
	ts := NewTrustStore(filepath.Join(config, "truststore"))
	nts := truststore.NewX509TrustStore(dir.NewSysFS(config))
	for _, tc := range storeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if ValidStoreName(tc.ref.Name) && tc.ref.Type.Valid() {
				tc.build(t, ts.Path(tc.ref))
			}
			certs, err := ts.Certificates(tc.ref)
			ncerts, nerr := nts.GetCertificates(context.Background(), truststore.Type(tc.ref.Type), tc.ref.Name)
			var se *StoreError
			if tc.kind == "" {
				if err != nil || nerr != nil {
					t.Fatalf("keyward %v, notation %v", err, nerr)
				}
				if len(certs) != tc.certs || len(ncerts) != len(certs) {
					t.Fatalf("%d certificates, notation %d, want %d", len(certs), len(ncerts), tc.certs)
				}
				for i := range certs {
					if !certs[i].Equal(ncerts[i]) {
						t.Fatalf("certificate %d differs from notation's", i)
					}
				}
				return
			}
			if !errors.As(err, &se) || se.Kind != tc.kind {
				t.Fatalf("error %v (kind %v), want kind %s", err, se, tc.kind)
			}
			if nerr == nil {
				t.Fatalf("notation accepts the store; keyward: %v", err)
			}
			if se.NotationMessage() != nerr.Error() {
				t.Fatalf("message\n keyward  %s\n notation %s", se.NotationMessage(), nerr)
			}
			if !strings.HasPrefix(err.Error(), nerr.Error()) {
				t.Fatalf("Error() %q does not start with notation's message", err)
			}
		})
	}
}

// TestTrustStoreRefusesPipes: notation would block reading a FIFO in a
// store; keyward refuses it like a symlink.
func TestTrustStoreRefusesPipes(t *testing.T) {
	ts := NewTrustStore(t.TempDir())
	ref := StoreRef{StoreCA, "fifo"}
	mkdir(t, ts.Path(ref))
	if err := syscall.Mkfifo(filepath.Join(ts.Path(ref), "pipe.crt"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := ts.Load(ref); done <- err }()
	select {
	case err := <-done:
		var se *StoreError
		if !errors.As(err, &se) || se.Kind != StoreNotRegular || se.File != "pipe.crt" {
			t.Fatalf("Load = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
}

func TestTrustStoreBoundsFiles(t *testing.T) {
	ts := NewTrustStore(t.TempDir())
	ref := StoreRef{StoreCA, "big"}
	writeFile(t, filepath.Join(ts.Path(ref), "big.crt"), make([]byte, MaxCertificateFileSize+1))
	var se *StoreError
	if _, err := ts.Load(ref); !errors.As(err, &se) || se.Kind != StoreFileTooLarge {
		t.Fatalf("Load = %v", err)
	}
}

func TestParseStoreRef(t *testing.T) {
	for in, ok := range map[string]bool{"ca:a": true, "signingAuthority:a.b-c_d": true, "tsa:x": true, "ca": false, "CA:x": false, "ca:": false, "ca:a b": false, "ca:a:b": false} {
		r, err := ParseStoreRef(in)
		if (err == nil) != ok {
			t.Errorf("ParseStoreRef(%q) = %v, %v", in, r, err)
		}
		if ok && r.String() != in {
			t.Errorf("String() = %q", r.String())
		}
	}
}

func TestConfigDir(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"NOTATION_CONFIG": "/cfg", "XDG_CONFIG_HOME": "/x"}, "/cfg"},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/notation"},
		{"linux", map[string]string{"HOME": "/h"}, "/h/.config/notation"},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "relative", "HOME": "/h"}, ".notation"},
		{"linux", map[string]string{}, ".notation"},
		{"darwin", map[string]string{"HOME": "/Users/a"}, "/Users/a/Library/Application Support/notation"},
		{"windows", map[string]string{"AppData": `C:\Users\a\AppData\Roaming`}, filepath.Join(`C:\Users\a\AppData\Roaming`, "notation")},
	}
	for _, tt := range tests {
		if got := ConfigDir(tt.goos, env(tt.env)); got != tt.want {
			t.Errorf("ConfigDir(%s, %v) = %q, want %q", tt.goos, tt.env, got, tt.want)
		}
	}
	if got := DefaultTrustStoreDir("linux", env(map[string]string{"HOME": "/h"})); got != "/h/.config/notation/truststore" {
		t.Errorf("DefaultTrustStoreDir = %q", got)
	}
	if got := DefaultPolicyFile("linux", env(map[string]string{"HOME": "/h"})); got != "/h/.config/notation/trustpolicy.json" {
		t.Errorf("DefaultPolicyFile = %q", got)
	}
}
