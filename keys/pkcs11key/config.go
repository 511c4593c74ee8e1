package pkcs11key

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/keys"
)

// Plugin config keys read by this backend, besides keys.ConfigCertChain.
const (
	// ConfigModule is the absolute path of the PKCS#11 module, used when
	// the key id names none.
	ConfigModule = "pkcs11_module"
	// ConfigCACerts is the path of a PEM bundle of intermediate and root
	// certificates completing the chain of the token's leaf certificate.
	ConfigCACerts = "ca_certs"
)

// Environment variables read by this backend.
const (
	// EnvModule is the machine-wide default PKCS#11 module path.
	EnvModule = "KEYWARD_PKCS11_MODULE"
	// EnvPIN holds the user PIN when the key id has no pin-source.
	EnvPIN = "KEYWARD_PKCS11_PIN"
)

// Size bounds of the files this backend reads.
const (
	maxPINFileSize   = 4 << 10
	maxCAFileSize    = 4 << 20
	maxModuleConfig  = 64 << 10
	maxChainLength   = 10
	maxObjectsListed = 1000
)

// Backend opens pkcs11: keys.
type Backend struct {
	// Getenv reads the environment (os.Getenv in the plugin binary).
	Getenv func(string) string

	// moduleDirs and p11kitDirs replace the default search directories
	// of module-name, in tests.
	moduleDirs []string
	p11kitDirs []string
}

var _ keys.Backend = Backend{}

// Scheme returns "pkcs11".
func (Backend) Scheme() string { return "pkcs11" }

// ConfigKeys lists the plugin config keys pkcs11: keys read.
func (Backend) ConfigKeys() []string {
	return []string{keys.ConfigCertChain, ConfigCACerts, ConfigModule}
}

func (b Backend) getenv(name string) string {
	if b.Getenv == nil {
		return ""
	}
	return b.Getenv(name)
}

func invalidf(format string, args ...any) error { return keys.Invalidf(format, args...) }

// moduleChoice is the resolved module and where it came from, for messages.
type moduleChoice struct {
	path   string
	source string
}

// resolveModule applies the precedence documented in the package comment.
func (b Backend) resolveModule(u *URI, cfg keys.Config) (moduleChoice, error) {
	var fromURI *moduleChoice
	switch {
	case u.ModulePath != "":
		if !filepath.IsAbs(u.ModulePath) {
			return moduleChoice{}, invalidf("key id module-path=%q is not an absolute path: give the full path of the PKCS#11 library, since notation may run from any directory", u.ModulePath)
		}
		if u.ModuleName != "" && !b.nameMatchesFile(u.ModuleName, u.ModulePath) {
			return moduleChoice{}, invalidf("key id sets module-path=%q and module-name=%q, which name different libraries: keep module-path alone", u.ModulePath, u.ModuleName)
		}
		fromURI = &moduleChoice{path: filepath.Clean(u.ModulePath), source: "module-path in the key id"}
	case u.ModuleName != "":
		p, err := b.findModule(u.ModuleName)
		if err != nil {
			return moduleChoice{}, err
		}
		fromURI = &moduleChoice{path: p, source: fmt.Sprintf("module-name=%s in the key id", u.ModuleName)}
	}
	var fromConfig *moduleChoice
	if v, ok := cfg[ConfigModule]; ok {
		if v == "" || !filepath.IsAbs(v) {
			return moduleChoice{}, invalidf("plugin config %s=%q is not an absolute path: give the full path of the PKCS#11 library, since notation may run from any directory", ConfigModule, v)
		}
		fromConfig = &moduleChoice{path: filepath.Clean(v), source: "plugin config " + ConfigModule}
	}
	var m moduleChoice
	switch {
	case fromURI != nil && fromConfig != nil:
		if !sameFile(fromURI.path, fromConfig.path) {
			return moduleChoice{}, invalidf("the key id names PKCS#11 module %q (%s) but plugin config %s names %q: remove one of them",
				fromURI.path, fromURI.source, ConfigModule, fromConfig.path)
		}
		m = *fromURI
	case fromURI != nil:
		m = *fromURI
	case fromConfig != nil:
		m = *fromConfig
	default:
		v := b.getenv(EnvModule)
		if v == "" {
			return moduleChoice{}, invalidf("no PKCS#11 module is configured: add module-path=/path/to/module.so to the key id's query (e.g. pkcs11:token=<label>;object=<key>?module-path=/usr/lib/softhsm/libsofthsm2.so), set plugin config %s=<path>, or export %s",
				ConfigModule, EnvModule)
		}
		if !filepath.IsAbs(v) {
			return moduleChoice{}, invalidf("environment variable %s=%q is not an absolute path: give the full path of the PKCS#11 library", EnvModule, v)
		}
		m = moduleChoice{path: filepath.Clean(v), source: "environment variable " + EnvModule}
	}
	return m, checkModuleFile(m)
}

func checkModuleFile(m moduleChoice) error {
	fi, err := os.Stat(m.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return invalidf("PKCS#11 module %q (%s) does not exist: install the token's PKCS#11 library (for SoftHSM: apt-get install softhsm2) or correct the path", m.path, m.source)
	case err != nil:
		return invalidf("PKCS#11 module %q (%s) cannot be read: %v", m.path, m.source, errors.Unwrap(err))
	case !fi.Mode().IsRegular():
		return invalidf("PKCS#11 module %q (%s) is not a regular file: give the path of the library (.so)", m.path, m.source)
	}
	return nil
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// libraryNames are the file names module-name=name may stand for.
func libraryNames(name string) []string {
	if strings.HasSuffix(name, ".so") || strings.Contains(name, ".so.") {
		return []string{name}
	}
	return []string{name + ".so", "lib" + name + ".so", name}
}

// nameMatchesFile reports whether module-name=name names the library file
// path, by file name or through a p11-kit module config.
func (b Backend) nameMatchesFile(name, path string) bool {
	base := filepath.Base(path)
	for _, n := range libraryNames(name) {
		if base == n {
			return true
		}
	}
	p, err := b.findModule(name)
	return err == nil && sameFile(p, path)
}

// multiarch returns the Debian multiarch directory name of this platform.
func multiarch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64-linux-gnu"
	case "arm64":
		return "aarch64-linux-gnu"
	case "386":
		return "i386-linux-gnu"
	case "arm":
		return "arm-linux-gnueabihf"
	case "ppc64le":
		return "powerpc64le-linux-gnu"
	case "s390x":
		return "s390x-linux-gnu"
	case "riscv64":
		return "riscv64-linux-gnu"
	}
	return runtime.GOARCH + "-linux-gnu"
}

// DefaultModuleDirs are the directories module-name searches for a library,
// in order.
func DefaultModuleDirs() []string {
	ma := multiarch()
	return []string{
		"/usr/lib/" + ma + "/pkcs11", "/usr/lib/pkcs11", "/usr/lib64/pkcs11", "/usr/local/lib/pkcs11",
		"/usr/lib/" + ma + "/softhsm", "/usr/lib/softhsm", "/usr/lib64/softhsm", "/usr/local/lib/softhsm",
		"/usr/lib/" + ma, "/usr/lib64", "/usr/lib", "/usr/local/lib",
	}
}

// defaultP11KitDirs are p11-kit's module config directories, user first
// (p11-kit config.html "Module Configuration").
func (b Backend) defaultP11KitDirs() []string {
	var dirs []string
	if home := b.getenv("HOME"); home != "" {
		dirs = append(dirs, filepath.Join(home, ".config", "pkcs11", "modules"))
	}
	return append(dirs, "/etc/pkcs11/modules", "/usr/share/p11-kit/modules")
}

// findModule resolves module-name: a p11-kit module config first, then a
// library file in the module directories.
func (b Backend) findModule(name string) (string, error) {
	p11kit := b.p11kitDirs
	if p11kit == nil {
		p11kit = b.defaultP11KitDirs()
	}
	dirs := b.moduleDirs
	if dirs == nil {
		dirs = DefaultModuleDirs()
	}
	for _, d := range p11kit {
		p, ok, err := readP11KitModule(filepath.Join(d, name+".module"), dirs[0])
		if err != nil {
			return "", err
		}
		if ok {
			return p, nil
		}
	}
	for _, d := range dirs {
		for _, n := range libraryNames(name) {
			p := filepath.Join(d, n)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", invalidf("PKCS#11 module-name=%s was not found: no p11-kit config %s.module in %s and no %s in %s; install the module or use module-path=/absolute/path/to/module.so",
		name, name, strings.Join(p11kit, ", "), strings.Join(libraryNames(name), " or "), strings.Join(dirs, ", "))
}

// readP11KitModule reads the "module:" line of a p11-kit module config. A
// relative module path is relative to p11-kit's module directory.
func readP11KitModule(path, moduleDir string) (string, bool, error) {
	data, err := bounded.ReadFile(path, maxModuleConfig, "")
	var tl *bounded.TooLargeError
	switch {
	case errors.As(err, &tl):
		return "", false, invalidf("p11-kit module config %q is larger than %d bytes: a module config is a few lines; fix it or use module-path in the key id", path, maxModuleConfig)
	case err != nil:
		// absent, unreadable or not a regular file (a FIFO cannot hang
		// the plugin: bounded opens without blocking): not this directory
		return "", false, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != "module" {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "" {
			break
		}
		if !filepath.IsAbs(v) {
			v = filepath.Join(moduleDir, v)
		}
		return v, true, nil
	}
	return "", false, invalidf("p11-kit module config %q has no \"module:\" line naming the library: fix it or use module-path in the key id", path)
}

// pinSource says where the PIN comes from. It holds no PIN.
type pinSource struct {
	file string // absolute path, or ""
	env  string // environment variable name, or ""
	desc string // a description for messages, when the PIN came otherwise
}

func (p pinSource) configured() bool { return p.file != "" || p.env != "" }

// String names the source for messages, never the PIN.
func (p pinSource) String() string {
	switch {
	case p.desc != "":
		return p.desc
	case p.file != "":
		return fmt.Sprintf("pin-source file %q", p.file)
	case p.env != "":
		return "environment variable " + p.env
	}
	return "no PIN source"
}

// resolvePIN returns the PIN source: pin-source in the key id, else
// KEYWARD_PKCS11_PIN when set. A pin-source file is checked now (it exists,
// is private) so that describe-key reports a broken source before signing.
func (b Backend) resolvePIN(u *URI) (pinSource, error) {
	if u.PINSource != "" {
		path, err := pinSourcePath(u.PINSource)
		if err != nil {
			return pinSource{}, err
		}
		f, err := openPrivate("PIN file", path)
		if err != nil {
			return pinSource{}, err
		}
		f.Close()
		return pinSource{file: path}, nil
	}
	if b.getenv(EnvPIN) != "" {
		return pinSource{env: EnvPIN}, nil
	}
	return pinSource{}, nil
}

// pinSourcePath returns the file named by a pin-source value: file:/path,
// file:///path (RFC 8089) or /path.
func pinSourcePath(v string) (string, error) {
	p := v
	if rest, ok := cutSchemeFold(v, "file:"); ok {
		p = rest
		if strings.HasPrefix(rest, "//") {
			host, path, _ := strings.Cut(rest[2:], "/")
			if host != "" && host != "localhost" {
				return "", invalidf("pin-source=%q names host %q: only local files can hold the PIN, e.g. pin-source=file:/run/secrets/pin", v, host)
			}
			p = "/" + path
		}
	} else if strings.HasPrefix(v, "|") || strings.Contains(v, ":") && !strings.HasPrefix(v, "/") {
		return "", invalidf("pin-source=%s is not supported: keyward reads the PIN from a file, pin-source=file:/absolute/path (or export %s)", quotePINSource(v), EnvPIN)
	}
	if !filepath.IsAbs(p) {
		return "", invalidf("pin-source=%s is not an absolute path: use pin-source=file:/absolute/path/to/pin, since notation may run from any directory", quotePINSource(v))
	}
	return filepath.Clean(p), nil
}

// quotePINSource quotes a pin-source value for a message, unless it looks
// like the PIN itself (no '/' and no '.': people type the PIN where its
// file belongs).
func quotePINSource(v string) string {
	if strings.ContainsAny(v, "/.") {
		return fmt.Sprintf("%q", v)
	}
	return "(value not shown: it may be the PIN itself)"
}

// read returns the PIN.
func (p pinSource) read(getenv func(string) string) (string, error) {
	switch {
	case p.file != "":
		data, err := keys.ReadFile("PIN file", p.file, maxPINFileSize, true)
		if err != nil {
			return "", err
		}
		data = bytes.TrimSuffix(data, []byte("\n"))
		data = bytes.TrimSuffix(data, []byte("\r"))
		if len(data) == 0 {
			return "", invalidf("PIN file %q is empty: write the token's user PIN into it", p.file)
		}
		return string(data), nil
	case p.env != "":
		v := getenv(p.env)
		if v == "" {
			return "", invalidf("environment variable %s is empty", p.env)
		}
		return v, nil
	}
	return "", invalidf("no PIN is configured")
}

// openPrivate opens a secret file: a regular file that group and others
// cannot access, opened without blocking (keys.OpenRegular).
func openPrivate(what, path string) (*os.File, error) {
	f, fi, err := keys.OpenRegular(what, path)
	if err != nil {
		return nil, err
	}
	if err := keys.CheckPrivate(what, path, fi); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// chainConfig is the certificate configuration of a key.
type chainConfig struct {
	certChain string // cert_chain: the whole chain, overriding the token
	caCerts   string // ca_certs: issuers completing the token's leaf
}

func readChainConfig(cfg keys.Config) (chainConfig, error) {
	var c chainConfig
	for _, k := range []struct {
		name string
		dst  *string
	}{{keys.ConfigCertChain, &c.certChain}, {ConfigCACerts, &c.caCerts}} {
		v, ok := cfg[k.name]
		if !ok {
			continue
		}
		if v == "" || !filepath.IsAbs(v) {
			return c, invalidf("plugin config %s=%q is not an absolute path: give the full path of the PEM file, since notation may run from any directory", k.name, v)
		}
		*k.dst = filepath.Clean(v)
	}
	if c.certChain != "" && c.caCerts != "" {
		return c, invalidf("plugin config sets both %s and %s: %s replaces the token's certificates entirely, so %s would be ignored; keep %s alone (leaf first, ending with the root) or use %s with the leaf on the token",
			keys.ConfigCertChain, ConfigCACerts, keys.ConfigCertChain, ConfigCACerts, keys.ConfigCertChain, ConfigCACerts)
	}
	return c, nil
}

// ReadPIN reads a PIN from a pin-source value (file:/path, file:///path or
// /path) with the checks the backend applies: a regular file that group and
// others cannot read; one trailing newline is ignored.
func ReadPIN(source string) (string, error) {
	p, err := pinSourcePath(source)
	if err != nil {
		return "", err
	}
	return pinSource{file: p}.read(nil)
}
