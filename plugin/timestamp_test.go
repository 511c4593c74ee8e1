package plugin

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testpki"
)

// TestReadTimestampRoot checks notation sign's rules for the TSA root
// certificate file: one self-signed certificate, PEM or DER.
func TestReadTimestampRoot(t *testing.T) {
	dir := t.TempDir()
	root := testpki.Root(t, "timestamp root file")
	inter := root.Intermediate(t, "timestamp intermediate file")
	for _, tc := range []struct {
		name string
		data []byte
		want string // "" when the root is read
	}{
		{"pem", testpki.CertsPEM(root.Cert), ""},
		{"der", root.Cert.Raw, ""},
		{"two certificates", testpki.CertsPEM(root.Cert, inter.Cert), "holds 2 certificates"},
		{"not a root", testpki.CertsPEM(inter.Cert), "is not a root certificate"},
		{"private key", testpki.KeyPEM(t, root.Key), "holds a private key"},
		{"not a certificate block", []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"), `holds a PEM block of type "CERTIFICATE REQUEST"`},
		{"empty", nil, "holds no certificate"},
		{"garbage", []byte("not a certificate"), "neither PEM nor DER"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := testpki.WriteFile(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".crt", tc.data, 0o644)
			c, err := readTimestampRoot(path)
			if tc.want == "" {
				if err != nil || !c.Equal(root.Cert) {
					t.Fatalf("readTimestampRoot = %v, %v; want the root", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want one naming %s with %q", err, path, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----") {
				t.Fatalf("the error quotes the key file: %v", err)
			}
		})
	}
	if _, err := readTimestampRoot(filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "timestamp_root_cert file") {
		t.Errorf("missing file: %v", err)
	}
}
