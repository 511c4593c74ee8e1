// Package truststore reads notation's trust stores: named folders of CA,
// signing authority and timestamp authority certificates laid out as
// notation lays out {NOTATION_CONFIG}/truststore (x509/<type>/<name>/<files>),
// with notation-go v1.3.2's rules and messages (verifier/truststore). Trust
// policy statements name stores with a [Ref]; package policy checks those
// references and package verify reads the certificates through a
// [*TrustStore].
package truststore

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/internal/bounded"
)

// MaxCertificateFileSize bounds each file read from a trust store. A bundle
// of every public root CA is well under 1 MiB.
const MaxCertificateFileSize = 4 << 20

// TrustStore reads named trust stores from a directory laid out as notation
// lays out {NOTATION_CONFIG}/truststore: x509/<type>/<name>/<files>. It
// keeps no state: every call reads the disk, and callers that verify many
// artifacts cache the results per [Ref].
type TrustStore struct {
	dir string
}

// New returns the trust store rooted at dir (the folder that
// holds x509/).
func New(dir string) *TrustStore { return &TrustStore{dir: dir} }

// Dir returns the trust store's root folder.
func (ts *TrustStore) Dir() string { return ts.dir }

// Path returns the folder of the named store.
func (ts *TrustStore) Path(ref Ref) string {
	return filepath.Join(ts.dir, "x509", string(ref.Type), ref.Name)
}

// Store is a loaded named store.
type Store struct {
	Ref  Ref
	Path string
	// Files lists the certificate files read, in name order, each with its
	// certificates.
	Files []File
}

// File is one file of a store and the certificates it holds.
type File struct {
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
// rules and errors (a [*Error]).
func (ts *TrustStore) Certificates(ref Ref) ([]*x509.Certificate, error) {
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
func (ts *TrustStore) Load(ref Ref) (*Store, error) {
	fail := func(kind ErrorKind, file, msg string, err error) (*Store, error) {
		return nil, &Error{Ref: ref, Kind: kind, Path: ts.Path(ref), File: file, msg: msg, err: err}
	}
	if !ref.Type.Valid() {
		return fail(KindBadReference, "", fmt.Sprintf("unsupported trust store type: %s", ref.Type), nil)
	}
	if !ValidName(ref.Name) {
		return fail(KindBadReference, "", fmt.Sprintf("trust store name needs to follow [a-zA-Z0-9_.-]+ format, %s is invalid", ref.Name), nil)
	}
	path := ts.Path(ref)
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(KindNotFound, "", fmt.Sprintf("the trust store %q of type %q does not exist", ref.Name, ref.Type), nil)
		}
		return fail(KindUnreadable, "", fmt.Sprintf("failed to access the trust store %q of type %q", ref.Name, ref.Type), err)
	}
	if !fi.Mode().IsDir() {
		return fail(KindNotDirectory, "", fmt.Sprintf("the trust store %s of type %s with path %s is not a regular directory (symlinks are not supported)", ref.Name, ref.Type, path), nil)
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return fail(KindUnreadable, "", fmt.Sprintf("failed to access the trust store %q of type %q", ref.Name, ref.Type), err)
	}
	store := &Store{Ref: ref, Path: path}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() {
			return fail(KindNotRegular, name, fmt.Sprintf("trusted certificate %s in trust store %s of type %s is not a regular file (directories or symlinks are not supported)", name, ref.Name, ref.Type), nil)
		}
		certs, kind, err := readCertificateFile(filepath.Join(path, name))
		if err != nil {
			return fail(kind, name, fmt.Sprintf("failed to read the trusted certificate %s in trust store %s of type %s", name, ref.Name, ref.Type), err)
		}
		if err := checkStoreCertificates(certs); err != nil {
			return fail(KindNotCA, name, fmt.Sprintf("failed to validate the trusted certificate %s in trust store %s of type %s", name, ref.Name, ref.Type), err)
		}
		if ref.Type == TypeTSA {
			for _, c := range certs {
				if err := checkRootCA(c); err != nil {
					return fail(KindTSANotRoot, name, fmt.Sprintf("trusted certificate %s in trust store %s of type %s is invalid: %v", name, ref.Name, ref.Type, err), nil)
				}
			}
		}
		store.Files = append(store.Files, File{Name: name, Certificates: certs})
	}
	if len(store.Files) == 0 {
		return fail(KindEmpty, "", fmt.Sprintf("no x509 certificates were found in trust store %q of type %q", ref.Name, ref.Type), nil)
	}
	return store, nil
}

// readCertificateFile reads PEM (every block must be a certificate) or,
// when there is no PEM block, DER certificates, as notation-core-go's
// ReadCertificateFile does (notation-core-go x509/cert.go), but bounded
// in size.
func readCertificateFile(path string) ([]*x509.Certificate, ErrorKind, error) {
	data, err := bounded.ReadFile(path, MaxCertificateFileSize, "the file")
	if err != nil {
		var tooLarge *bounded.TooLargeError
		if errors.As(err, &tooLarge) {
			return nil, KindFileTooLarge, err
		}
		return nil, KindUnreadable, err
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, KindBadCertFile, err
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
