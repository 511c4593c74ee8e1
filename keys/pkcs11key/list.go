package pkcs11key

import (
	"crypto/x509"
)

// ListOptions selects what [List] reads.
type ListOptions struct {
	// Module is the absolute path of the PKCS#11 library.
	Module string
	// Token is a token label; empty lists every token.
	Token string
	// Login logs in to every token that requires it, to list the private
	// keys too. Without it List logs in only to a token that shows no key
	// before login.
	Login bool
	// PIN returns the user PIN of a token when List needs to log in. It
	// may return [ErrNoPIN] (or PIN may be nil) to list without login.
	PIN func(TokenInventory) (string, error)
}

// Inventory is what a PKCS#11 module exposes.
type Inventory struct {
	Module  string
	Library LibraryInfo
	Tokens  []TokenInventory
}

// LibraryInfo is the module's CK_INFO.
type LibraryInfo struct {
	Manufacturer string
	Description  string
	Version      string // library version, "major.minor"
	Cryptoki     string // PKCS#11 version implemented, "major.minor"
}

// TokenInventory is one token and its objects.
type TokenInventory struct {
	SlotID        uint64
	Label         string
	Manufacturer  string
	Model         string
	Serial        string
	LoginRequired bool
	// LoggedIn says whether the listing was made after login: only then
	// are private keys (and objects hidden before login) included.
	LoggedIn bool
	Keys     []KeyEntry
	// Certificates are every X.509 certificate object, leaves and CAs.
	Certificates []CertEntry
	// Notes say what the listing may miss and why.
	Notes []string
}

// PrivateKeyState says whether a key's private key object was seen.
type PrivateKeyState string

// Private key states.
const (
	PrivatePresent PrivateKeyState = "present"
	PrivateAbsent  PrivateKeyState = "absent"
	// PrivateUnknown: the token hides private keys until login.
	PrivateUnknown PrivateKeyState = "unknown"
)

// KeyEntry is a key pair of a token.
type KeyEntry struct {
	// URI is the PKCS#11 URI that selects the key, module path included:
	// the --id to give notation.
	URI   string
	Label string
	ID    []byte
	// KeySpec is the notation key spec ("EC-256"), empty when notation
	// cannot sign with the key; Unsupported then says why.
	KeySpec     string
	Unsupported string
	// KeyType describes the key, also when unsupported ("RSA-1024").
	KeyType    string
	PrivateKey PrivateKeyState
	// Certificate is the token's certificate for the key (the object with
	// its CKA_ID, or label), nil if none.
	Certificate *x509.Certificate
}

// CertEntry is a certificate object.
type CertEntry struct {
	Label string
	ID    []byte
	Cert  *x509.Certificate
}
