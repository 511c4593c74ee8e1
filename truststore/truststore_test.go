package truststore

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
	ntruststore "github.com/notaryproject/notation-go/verifier/truststore"

	"github.com/keyward/keyward/internal/testpki"
)

// storeCase builds one named store under <config>/truststore/x509.
type storeCase struct {
	name  string
	ref   Ref
	build func(t *testing.T, path string) // path is the store folder (not created)
	kind  ErrorKind                       // "" when the store loads
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
	ca := func(name string) Ref { return Ref{Type: TypeCA, Name: name} }
	return []storeCase{
		{"pem root", ca("pem"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "root.pem"), pemOf(root)) }, "", 1},
		{"der root, any extension", ca("der"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "root.bin"), root.Cert.Raw) }, "", 1},
		{"several files and certificates", ca("multi"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "a.crt"), pemOf(root, inter))
			writeFile(t, filepath.Join(p, "b.der"), append(append([]byte{}, root.Cert.Raw...), inter.Cert.Raw...))
		}, "", 4},
		{"self-signed leaf", ca("self"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "leaf.crt"), pemOf(self)) }, "", 1},
		{"issued leaf", ca("leaf"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "leaf.crt"), pemOf(root, leaf)) }, KindNotCA, 0},
		{"missing", ca("missing"), func(*testing.T, string) {}, KindNotFound, 0},
		{"empty folder", ca("empty"), func(t *testing.T, p string) { mkdir(t, p) }, KindEmpty, 0},
		{"store is a file", ca("file"), func(t *testing.T, p string) { writeFile(t, p, pemOf(root)) }, KindNotDirectory, 0},
		{"store is a symlink", ca("link"), func(t *testing.T, p string) {
			real := p + "-real"
			writeFile(t, filepath.Join(real, "root.crt"), pemOf(root))
			if err := os.Symlink(real, p); err != nil {
				t.Fatal(err)
			}
		}, KindNotDirectory, 0},
		{"symlinked certificate", ca("filelink"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "..", "outside.crt"), pemOf(root))
			mkdir(t, p)
			if err := os.Symlink(filepath.Join(p, "..", "outside.crt"), filepath.Join(p, "root.crt")); err != nil {
				t.Fatal(err)
			}
		}, KindNotRegular, 0},
		{"sub-folder", ca("subdir"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "root.crt"), pemOf(root))
			writeFile(t, filepath.Join(p, "old", "root.crt"), pemOf(root))
		}, KindNotRegular, 0},
		{"garbage", ca("garbage"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "x.crt"), []byte("not a certificate")) }, KindBadCertFile, 0},
		{"private key block", ca("key"), func(t *testing.T, p string) {
			writeFile(t, filepath.Join(p, "x.pem"), append(pemOf(root), testpki.KeyPEM(t, root.Key)...))
		}, KindBadCertFile, 0},
		{"empty file", ca("emptyfile"), func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "x.crt"), nil) }, KindNotCA, 0},
		{"tsa root", Ref{TypeTSA, "tsa"}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "tsa.crt"), pemOf(tsaRoot)) }, "", 1},
		{"tsa intermediate", Ref{TypeTSA, "tsainter"}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "i.crt"), pemOf(inter)) }, KindTSANotRoot, 0},
		{"signing authority", Ref{TypeSigningAuthority, "sa"}, func(t *testing.T, p string) { writeFile(t, filepath.Join(p, "r.crt"), pemOf(root)) }, "", 1},
		{"bad name", ca("bad name"), func(*testing.T, string) {}, KindBadReference, 0},
		{"bad type", Ref{"CA", "x"}, func(*testing.T, string) {}, KindBadReference, 0},
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
	ts := New(filepath.Join(config, "truststore"))
	nts := ntruststore.NewX509TrustStore(dir.NewSysFS(config))
	for _, tc := range storeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			if ValidName(tc.ref.Name) && tc.ref.Type.Valid() {
				tc.build(t, ts.Path(tc.ref))
			}
			certs, err := ts.Certificates(tc.ref)
			ncerts, nerr := nts.GetCertificates(context.Background(), ntruststore.Type(tc.ref.Type), tc.ref.Name)
			var se *Error
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

// TestTrustRefusesPipes: notation would block reading a FIFO in a
// store; keyward refuses it like a symlink.
func TestTrustRefusesPipes(t *testing.T) {
	ts := New(t.TempDir())
	ref := Ref{TypeCA, "fifo"}
	mkdir(t, ts.Path(ref))
	if err := syscall.Mkfifo(filepath.Join(ts.Path(ref), "pipe.crt"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() { _, err := ts.Load(ref); done <- err }()
	select {
	case err := <-done:
		var se *Error
		if !errors.As(err, &se) || se.Kind != KindNotRegular || se.File != "pipe.crt" {
			t.Fatalf("Load = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Load blocked on a FIFO")
	}
}

func TestTrustStoreBoundsFiles(t *testing.T) {
	ts := New(t.TempDir())
	ref := Ref{TypeCA, "big"}
	writeFile(t, filepath.Join(ts.Path(ref), "big.crt"), make([]byte, MaxCertificateFileSize+1))
	var se *Error
	if _, err := ts.Load(ref); !errors.As(err, &se) || se.Kind != KindFileTooLarge {
		t.Fatalf("Load = %v", err)
	}
}

func TestParseRef(t *testing.T) {
	for in, ok := range map[string]bool{"ca:a": true, "signingAuthority:a.b-c_d": true, "tsa:x": true, "ca": false, "CA:x": false, "ca:": false, "ca:a b": false, "ca:a:b": false} {
		r, err := ParseRef(in)
		if (err == nil) != ok {
			t.Errorf("ParseRef(%q) = %v, %v", in, r, err)
		}
		if ok && r.String() != in {
			t.Errorf("String() = %q", r.String())
		}
	}
}
