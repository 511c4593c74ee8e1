package policy

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// StoreType is a trust store type (spec "Trust Store").
type StoreType string

// The trust store types notation knows, case-sensitive.
const (
	// StoreCA holds certificate authorities for notary.x509 signatures.
	StoreCA StoreType = "ca"
	// StoreSigningAuthority holds signing authorities for
	// notary.x509.signingAuthority signatures.
	StoreSigningAuthority StoreType = "signingAuthority"
	// StoreTSA holds the roots of timestamp authorities.
	StoreTSA StoreType = "tsa"
)

// StoreTypes returns the trust store types.
func StoreTypes() []StoreType { return []StoreType{StoreCA, StoreSigningAuthority, StoreTSA} }

// Valid reports whether t is a trust store type.
func (t StoreType) Valid() bool {
	switch t {
	case StoreCA, StoreSigningAuthority, StoreTSA:
		return true
	}
	return false
}

// storeNameRE is notation's rule for named stores (file.IsValidFileName).
var storeNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// ValidStoreName reports whether name is a valid named store:
// [a-zA-Z0-9_.-]+.
func ValidStoreName(name string) bool { return storeNameRE.MatchString(name) }

// StoreRef names one trust store, "<type>:<name>" in a policy.
type StoreRef struct {
	Type StoreType `json:"type"`
	Name string    `json:"name"`
}

// String returns "<type>:<name>".
func (r StoreRef) String() string { return string(r.Type) + ":" + r.Name }

// MarshalText encodes r as "<type>:<name>".
func (r StoreRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// ParseStoreRef parses "<type>:<name>" (split at the first ':'), with
// notation's rules for the type and the name.
func ParseStoreRef(s string) (StoreRef, error) {
	t, n, ok := strings.Cut(s, ":")
	if !ok {
		return StoreRef{}, fmt.Errorf("malformed trust store value %q: the required format is <TrustStoreType>:<TrustStoreName>", s)
	}
	if !StoreType(t).Valid() {
		return StoreRef{}, fmt.Errorf("unsupported trust store type %q in trust store value %q", t, s)
	}
	if !ValidStoreName(n) {
		return StoreRef{}, fmt.Errorf("unsupported trust store name %q in trust store value %q: named store names follow [a-zA-Z0-9_.-]+", n, s)
	}
	return StoreRef{Type: StoreType(t), Name: n}, nil
}

// MaxCertificateFileSize bounds each file read from a trust store. A bundle
// of every public root CA is well under 1 MiB.
const MaxCertificateFileSize = 4 << 20

// TrustStore reads named trust stores from a directory laid out as notation
// lays out {NOTATION_CONFIG}/truststore: x509/<type>/<name>/<files>. It
// keeps no state: every call reads the disk, and callers that verify many
// artifacts cache the results per [StoreRef].
type TrustStore struct {
	dir string
}

// NewTrustStore returns the trust store rooted at dir (the folder that
// holds x509/).
func NewTrustStore(dir string) *TrustStore { return &TrustStore{dir: dir} }

// Dir returns the trust store's root folder.
func (ts *TrustStore) Dir() string { return ts.dir }

// Path returns the folder of the named store.
func (ts *TrustStore) Path(ref StoreRef) string {
	return filepath.Join(ts.dir, "x509", string(ref.Type), ref.Name)
}

// StoreErrorKind classifies a [StoreError].
type StoreErrorKind string

// The ways loading a store fails.
const (
	StoreBadReference StoreErrorKind = "bad-reference"    // type or name invalid
	StoreNotFound     StoreErrorKind = "not-found"        // no such folder
	StoreNotDirectory StoreErrorKind = "not-directory"    // a file or a symlink
	StoreUnreadable   StoreErrorKind = "unreadable"       // permission or I/O error
	StoreNotRegular   StoreErrorKind = "not-regular-file" // sub-folder, symlink, device or pipe inside
	StoreBadCertFile  StoreErrorKind = "bad-certificate-file"
	StoreNotCA        StoreErrorKind = "not-ca" // neither a CA nor self-signed
	StoreTSANotRoot   StoreErrorKind = "tsa-not-root"
	StoreEmpty        StoreErrorKind = "empty"
	StoreFileTooLarge StoreErrorKind = "file-too-large"
)

// StoreError is why a named store cannot be used. Its message is
// notation-go v1.3.2's (verifier/truststore), followed by the cause where
// notation hides it.
type StoreError struct {
	Ref  StoreRef
	Kind StoreErrorKind
	// Path is the store's folder; File is the offending file in it, if any.
	Path string
	File string
	msg  string
	err  error
}

func (e *StoreError) Error() string {
	if e.err != nil {
		return e.msg + ": " + e.err.Error()
	}
	return e.msg
}

// NotationMessage returns notation's message alone, without the cause.
func (e *StoreError) NotationMessage() string { return e.msg }

func (e *StoreError) Unwrap() error { return e.err }

// Store is a loaded named store.
type Store struct {
	Ref  StoreRef
	Path string
	// Files lists the certificate files read, in name order, each with its
	// certificates.
	Files []StoreFile
}

// StoreFile is one file of a store and the certificates it holds.
type StoreFile struct {
	Name         string
	Certificates []*x509.Certificate
}

// Certificates returns every certificate of the store, file by file.
func (s *Store) Certificates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, f := range s.Files {
		out = append(out, f.Certificates...)
	}
	return out
}

// Certificates returns the certificates of the named store, with notation's
// rules and errors (a [*StoreError]).
func (ts *TrustStore) Certificates(ref StoreRef) ([]*x509.Certificate, error) {
	s, err := ts.Load(ref)
	if err != nil {
		return nil, err
	}
	return s.Certificates(), nil
}

// Load reads the named store the way notation-go v1.3.2 does: the store
// must be a real folder (not a symlink); every entry in it must be a
// regular file (sub-folders and symlinks are errors, not skipped, whatever
// the file's extension); each file holds one or more PEM certificates, or
// DER certificates; each certificate must be a CA or self-signed; a tsa
// store holds only self-signed roots; and the store must not be empty.
// keyward also refuses devices and pipes (notation would block reading a
// pipe) and files larger than [MaxCertificateFileSize].
func (ts *TrustStore) Load(ref StoreRef) (*Store, error) {
	fail := func(kind StoreErrorKind, file, msg string, err error) (*Store, error) {
		return nil, &StoreError{Ref: ref, Kind: kind, Path: ts.Path(ref), File: file, msg: msg, err: err}
	}
	if !ref.Type.Valid() {
		return fail(StoreBadReference, "", fmt.Sprintf("unsupported trust store type: %s", ref.Type), nil)
	}
	if !ValidStoreName(ref.Name) {
		return fail(StoreBadReference, "", fmt.Sprintf("trust store name needs to follow [a-zA-Z0-9_.-]+ format, %s is invalid", ref.Name), nil)
	}
	path := ts.Path(ref)
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(StoreNotFound, "", fmt.Sprintf("the trust store %q of type %q does not exist", ref.Name, ref.Type), nil)
		}
		return fail(StoreUnreadable, "", fmt.Sprintf("failed to access the trust store %q of type %q", ref.Name, ref.Type), err)
	}
	if !fi.Mode().IsDir() {
		return fail(StoreNotDirectory, "", fmt.Sprintf("the trust store %s of type %s with path %s is not a regular directory (symlinks are not supported)", ref.Name, ref.Type, path), nil)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fail(StoreUnreadable, "", fmt.Sprintf("failed to access the trust store %q of type %q", ref.Name, ref.Type), err)
	}
	store := &Store{Ref: ref, Path: path}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			return fail(StoreNotRegular, name, fmt.Sprintf("trusted certificate %s in trust store %s of type %s is not a regular file (directories or symlinks are not supported)", name, ref.Name, ref.Type), nil)
		}
		certs, kind, err := readCertificateFile(filepath.Join(path, name))
		if err != nil {
			return fail(kind, name, fmt.Sprintf("failed to read the trusted certificate %s in trust store %s of type %s", name, ref.Name, ref.Type), err)
		}
		if err := checkStoreCertificates(certs); err != nil {
			return fail(StoreNotCA, name, fmt.Sprintf("failed to validate the trusted certificate %s in trust store %s of type %s", name, ref.Name, ref.Type), err)
		}
		if ref.Type == StoreTSA {
			for _, c := range certs {
				if err := checkRootCA(c); err != nil {
					return fail(StoreTSANotRoot, name, fmt.Sprintf("trusted certificate %s in trust store %s of type %s is invalid: %v", name, ref.Name, ref.Type, err), nil)
				}
			}
		}
		store.Files = append(store.Files, StoreFile{Name: name, Certificates: certs})
	}
	if len(store.Files) == 0 {
		return fail(StoreEmpty, "", fmt.Sprintf("no x509 certificates were found in trust store %q of type %q", ref.Name, ref.Type), nil)
	}
	return store, nil
}

// readCertificateFile reads PEM (every block must be a certificate) or,
// when there is no PEM block, DER certificates, as notation-core-go's
// ReadCertificateFile does, but bounded in size.
func readCertificateFile(path string) ([]*x509.Certificate, StoreErrorKind, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, StoreUnreadable, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxCertificateFileSize+1))
	if err != nil {
		return nil, StoreUnreadable, err
	}
	if len(data) > MaxCertificateFileSize {
		return nil, StoreFileTooLarge, fmt.Errorf("the file is larger than %d bytes", MaxCertificateFileSize)
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, StoreBadCertFile, err
	}
	return certs, "", nil
}

func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return x509.ParseCertificates(data)
	}
	var certs []*x509.Certificate
	for ; block != nil; block, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// checkStoreCertificates requires at least one certificate, each a CA or
// self-signed (notation-go truststore.ValidateCertificates).
func checkStoreCertificates(certs []*x509.Certificate) error {
	if len(certs) == 0 {
		return errors.New("input certs cannot be empty")
	}
	for _, c := range certs {
		if !c.IsCA && !selfSigned(c) {
			return fmt.Errorf("certificate with subject %q is not a CA certificate or self-signed signing certificate", c.Subject)
		}
	}
	return nil
}

// selfSigned reports whether c's signature verifies with its own key.
func selfSigned(c *x509.Certificate) bool {
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// checkRootCA requires a self-signed, self-issued CA (tsa stores).
func checkRootCA(c *x509.Certificate) error {
	if err := c.CheckSignatureFrom(c); err != nil {
		return fmt.Errorf("certificate with subject %q is not a root CA certificate: %w", c.Subject, err)
	}
	if !bytes.Equal(c.RawSubject, c.RawIssuer) {
		return fmt.Errorf("certificate with subject %q is not a root CA certificate: issuer (%s) and subject (%s) are not the same", c.Subject, c.Issuer, c.Subject)
	}
	return nil
}

// ConfigDir returns notation's configuration folder ({NOTATION_CONFIG}) as
// notation v1.3.2 computes it from the environment: $NOTATION_CONFIG if set,
// else os.UserConfigDir()/notation for goos ($XDG_CONFIG_HOME or
// $HOME/.config on Linux and BSDs, $HOME/Library/Application Support on
// darwin, %AppData% on windows), else ".notation" as notation falls back.
// getenv is the environment of the command, so that callers decide what it
// is.
func ConfigDir(goos string, getenv func(string) string) string {
	if d := getenv("NOTATION_CONFIG"); d != "" {
		return d
	}
	base, ok := userConfigDir(goos, getenv)
	if !ok {
		return ".notation"
	}
	return filepath.Join(base, "notation")
}

// userConfigDir mirrors os.UserConfigDir for goos with getenv.
func userConfigDir(goos string, getenv func(string) string) (string, bool) {
	switch goos {
	case "windows":
		d := getenv("AppData")
		return d, d != ""
	case "darwin", "ios":
		h := getenv("HOME")
		if h == "" {
			return "", false
		}
		return filepath.Join(h, "Library", "Application Support"), true
	case "plan9":
		h := getenv("home")
		if h == "" {
			return "", false
		}
		return filepath.Join(h, "lib"), true
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return d, filepath.IsAbs(d)
	}
	h := getenv("HOME")
	if h == "" {
		return "", false
	}
	return filepath.Join(h, ".config"), true
}

// DefaultTrustStoreDir returns {NOTATION_CONFIG}/truststore.
func DefaultTrustStoreDir(goos string, getenv func(string) string) string {
	return filepath.Join(ConfigDir(goos, getenv), "truststore")
}

// DefaultPolicyFile returns {NOTATION_CONFIG}/trustpolicy.json, the one
// file notation v1.3.2 reads.
func DefaultPolicyFile(goos string, getenv func(string) string) string {
	return filepath.Join(ConfigDir(goos, getenv), "trustpolicy.json")
}
