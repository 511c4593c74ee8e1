package pkcs11key

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyward/keyward/keys"
)

// fakeModule creates an empty file standing for a library: resolution only
// checks that the file exists.
func fakeModule(t *testing.T, dir, name string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestResolveModule(t *testing.T) {
	dir := t.TempDir()
	modDir := filepath.Join(dir, "lib", "pkcs11")
	kitDir := filepath.Join(dir, "p11-kit")
	a := fakeModule(t, dir, "a.so")
	b := fakeModule(t, dir, "b.so")
	libfoo := fakeModule(t, modDir, "libfoo.so")
	bar := fakeModule(t, modDir, "bar.so")
	kitLib := fakeModule(t, filepath.Join(dir, "elsewhere"), "libkit.so")
	if err := os.MkdirAll(kitDir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(kitDir, "kit.module"), []byte("# comment\nmodule: "+kitLib+"\ncritical: no\n"), 0o644)
	os.WriteFile(filepath.Join(kitDir, "rel.module"), []byte("module: bar.so\n"), 0o644)
	os.WriteFile(filepath.Join(kitDir, "broken.module"), []byte("remote: x\n"), 0o644)
	os.WriteFile(filepath.Join(kitDir, "huge.module"), []byte("module: "+kitLib+"\n"+strings.Repeat("#\n", maxModuleConfig)), 0o644)
	if err := syscall.Mkfifo(filepath.Join(kitDir, "fifo.module"), 0o644); err != nil {
		t.Fatal(err)
	}
	be := Backend{Getenv: env(map[string]string{EnvModule: b}), moduleDirs: []string{modDir}, p11kitDirs: []string{kitDir}}

	tests := []struct {
		name string
		uri  string
		cfg  keys.Config
		be   Backend
		want string // path, or "error: <substring>"
	}{
		{"module-path", "pkcs11:?module-path=" + a, nil, be, a},
		{"module-path wins over env", "pkcs11:?module-path=" + a, nil, be, a},
		{"module-name lib<name>.so", "pkcs11:?module-name=foo", nil, be, libfoo},
		{"module-name <name>.so", "pkcs11:?module-name=bar", nil, be, bar},
		{"module-name p11-kit config", "pkcs11:?module-name=kit", nil, be, kitLib},
		{"module-name p11-kit relative", "pkcs11:?module-name=rel", nil, be, bar},
		{"module-name p11-kit without module line", "pkcs11:?module-name=broken", nil, be, "error: has no \"module:\" line"},
		{"module-name missing", "pkcs11:?module-name=nothere", nil, be, "error: module-name=nothere was not found"},
		{"module-name p11-kit config too large", "pkcs11:?module-name=huge", nil, be, "error: is larger than 65536 bytes"},
		{"module-name p11-kit FIFO (must not hang)", "pkcs11:?module-name=fifo", nil, be, "error: module-name=fifo was not found"},
		{"path and matching name", "pkcs11:?module-path=" + libfoo + "&module-name=foo", nil, be, libfoo},
		{"path and other name", "pkcs11:?module-path=" + a + "&module-name=foo", nil, be, "error: name different libraries"},
		{"config", "pkcs11:", keys.Config{ConfigModule: a}, be, a},
		{"config agrees with uri", "pkcs11:?module-path=" + a, keys.Config{ConfigModule: a}, be, a},
		{"config contradicts uri", "pkcs11:?module-path=" + a, keys.Config{ConfigModule: b}, be, "error: remove one of them"},
		{"config relative", "pkcs11:", keys.Config{ConfigModule: "a.so"}, be, "error: not an absolute path"},
		{"env", "pkcs11:", nil, be, b},
		{"nothing", "pkcs11:", nil, Backend{Getenv: env(nil)}, "error: no PKCS#11 module is configured"},
		{"relative path", "pkcs11:?module-path=lib/a.so", nil, be, "error: not an absolute path"},
		{"missing file", "pkcs11:?module-path=/nonexistent/libx.so", nil, be, "error: does not exist: install"},
		{"directory", "pkcs11:?module-path=" + dir, nil, be, "error: not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := ParseURI(tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			m, err := tt.be.resolveModule(u, tt.cfg)
			if want, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("resolveModule error %v, want %q", err, want)
				}
				if !isKind(err, keys.KindInvalid) {
					t.Errorf("error kind %v, want KindInvalid", keys.KindOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.path != tt.want {
				t.Errorf("module %q (%s), want %q", m.path, m.source, tt.want)
			}
		})
	}
}

func TestPINSource(t *testing.T) {
	dir := t.TempDir()
	const pin = "9876-secret"
	good := filepath.Join(dir, "pin")
	os.WriteFile(good, []byte(pin+"\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte(pin), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)

	be := Backend{Getenv: env(map[string]string{EnvPIN: "from-env"})}
	for _, tt := range []struct{ uri, want string }{
		{"pkcs11:?pin-source=file:" + good, pin},
		{"pkcs11:?pin-source=file://" + good, pin},
		{"pkcs11:?pin-source=file://localhost" + good, pin},
		{"pkcs11:?pin-source=" + good, pin},
		{"pkcs11:", "from-env"},
		{"pkcs11:?pin-source=file:" + open, "error: accessible by group or others"},
		{"pkcs11:?pin-source=file:" + empty, "error: is empty"},
		{"pkcs11:?pin-source=file:" + dir + "/nope", "error: does not exist"},
		{"pkcs11:?pin-source=file:" + dir, "error: not a regular file"},
		{"pkcs11:?pin-source=file://host" + good, "error: names host"},
		{"pkcs11:?pin-source=pin.txt", "error: not an absolute path"},
		{"pkcs11:?pin-source=|/bin/echo", "error: is not supported"},
		{"pkcs11:?pin-source=env:PIN", "error: is not supported"},
	} {
		u, err := ParseURI(tt.uri)
		if err != nil {
			t.Fatalf("%s: %v", tt.uri, err)
		}
		src, err := be.resolvePIN(u)
		var got string
		if err == nil {
			got, err = src.read(be.Getenv)
		}
		if want, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want %q", tt.uri, err, want)
			}
			if err != nil && strings.Contains(err.Error(), pin) {
				t.Errorf("%s: error repeats the PIN: %v", tt.uri, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.uri, err)
		} else if got != tt.want {
			t.Errorf("%s: PIN %q, want %q", tt.uri, got, tt.want)
		}
		if strings.Contains(src.String(), got) {
			t.Errorf("%s: the PIN source's description %q holds the PIN", tt.uri, src)
		}
	}
	// Without pin-source and environment: no PIN.
	src, err := Backend{Getenv: env(nil)}.resolvePIN(&URI{})
	if err != nil || src.configured() {
		t.Errorf("no PIN configured: got %v, %v", src, err)
	}
}

func TestChainConfig(t *testing.T) {
	if _, err := readChainConfig(keys.Config{keys.ConfigCertChain: "/a.pem", ConfigCACerts: "/b.pem"}); err == nil || !strings.Contains(err.Error(), "keep cert_chain alone") {
		t.Errorf("cert_chain with ca_certs: %v", err)
	}
	if _, err := readChainConfig(keys.Config{ConfigCACerts: "b.pem"}); err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Errorf("relative ca_certs: %v", err)
	}
	c, err := readChainConfig(keys.Config{ConfigCACerts: "/x/../b.pem"})
	if err != nil || c.caCerts != "/b.pem" || c.certChain != "" {
		t.Errorf("ca_certs: %+v, %v", c, err)
	}
}
