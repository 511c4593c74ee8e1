// Package filekey opens PEM private keys from files, the keys.Backend for
// key ids of the form file:<absolute path> or file:///<absolute path>.
//
// Supported encodings: PKCS#8 ("PRIVATE KEY"), PKCS#1 RSA ("RSA PRIVATE KEY"),
// SEC1 EC ("EC PRIVATE KEY") and encrypted PKCS#8 ("ENCRYPTED PRIVATE KEY",
// PBES2 with PBKDF2 or scrypt and AES-CBC or 3DES-CBC). The passphrase of an
// encrypted key comes from a file (plugin config passphrase_file) or an
// environment variable (passphrase_env), never from the plugin config value
// itself: notation stores plugin config in signingkeys.json and passes
// --plugin-config on its command line.
//
// Like ssh, the backend refuses a key file (or passphrase file) that group or
// others may access.
package filekey

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/keyward/keyward/keys"
)

// Plugin config keys read by this backend, besides keys.ConfigCertChain.
const (
	// ConfigPassphraseFile is the path of a file holding the passphrase of
	// an encrypted key; one trailing newline is ignored.
	ConfigPassphraseFile = "passphrase_file"
	// ConfigPassphraseEnv is the name of an environment variable holding
	// the passphrase of an encrypted key.
	ConfigPassphraseEnv = "passphrase_env"
)

// Size bounds of the files this backend reads.
const (
	maxKeyFileSize        = 1 << 20
	maxPassphraseFileSize = 64 << 10
)

// Backend opens file: keys.
type Backend struct {
	// Getenv reads the environment (os.Getenv in the plugin binary).
	Getenv func(string) string
}

var (
	_ keys.Backend   = Backend{}
	_ keys.Describer = Backend{}
)

// Scheme returns "file".
func (Backend) Scheme() string { return "file" }

// ConfigKeys lists the plugin config keys file: keys read.
func (Backend) ConfigKeys() []string {
	return []string{keys.ConfigCertChain, ConfigPassphraseFile, ConfigPassphraseEnv}
}

// Open reads the private key named by keyID and the chain named by the
// cert_chain plugin config.
func (b Backend) Open(_ context.Context, keyID string, cfg keys.Config) (*keys.Key, error) {
	path, err := ParseKeyID(keyID)
	if err != nil {
		return nil, err
	}
	chainPath, err := chainConfig(cfg)
	if err != nil {
		return nil, err
	}
	signer, err := b.readKey(path, cfg)
	if err != nil {
		return nil, err
	}
	chain, err := keys.ReadChain(chainPath)
	if err != nil {
		return nil, err
	}
	return &keys.Key{
		Signer:      signer,
		Chain:       chain,
		ChainSource: fmt.Sprintf("%s file %q", keys.ConfigCertChain, chainPath),
	}, nil
}

// Describe returns the public key of the chain's leaf certificate, for
// describe-key. It checks the key id, the config and that the key file is a
// private regular file, but neither reads the key nor checks the chain:
// generate-signature does both before it signs.
func (b Backend) Describe(_ context.Context, keyID string, cfg keys.Config) (crypto.PublicKey, error) {
	path, err := ParseKeyID(keyID)
	if err != nil {
		return nil, err
	}
	chainPath, err := chainConfig(cfg)
	if err != nil {
		return nil, err
	}
	f, fi, err := keys.OpenRegular("key file", path)
	if err != nil {
		return nil, err
	}
	f.Close()
	if err := keys.CheckPrivate("key file", path, fi); err != nil {
		return nil, err
	}
	chain, err := keys.ReadChain(chainPath)
	if err != nil {
		return nil, err
	}
	return chain[0].PublicKey, nil
}

func chainConfig(cfg keys.Config) (string, error) {
	chainPath, ok := cfg[keys.ConfigCertChain]
	if !ok || chainPath == "" {
		return "", keys.Invalidf("file: keys need plugin config %s=<absolute path of a PEM bundle: the key's certificate first, then intermediates, ending with the root>", keys.ConfigCertChain)
	}
	if !filepath.IsAbs(chainPath) {
		return "", keys.Invalidf("plugin config %s=%q is not an absolute path: give the full path, since notation may run from any directory", keys.ConfigCertChain, chainPath)
	}
	return chainPath, nil
}

// ParseKeyID returns the absolute path named by a file: key id. Both
// file:/abs/path (taken literally) and the RFC 8089 URI form
// file:///abs/path (percent-decoded; host empty or "localhost") are accepted.
func ParseKeyID(keyID string) (string, error) {
	if redacted := keys.RedactKeyID(keyID); redacted != keyID {
		// A PIN or passphrase written into the key id would otherwise
		// be quoted in every message naming the key file.
		return "", keys.Invalidf("key id %q carries what looks like a PIN or password: a file: key id is only a path; give the passphrase with plugin config %s or %s",
			redacted, ConfigPassphraseFile, ConfigPassphraseEnv)
	}
	rest, ok := strings.CutPrefix(keyID, "file:")
	if !ok {
		if len(keyID) >= 5 && strings.EqualFold(keyID[:5], "file:") {
			rest = keyID[5:]
		} else {
			return "", keys.Invalidf("key id %q is not a file: key id", keys.RedactKeyID(keyID))
		}
	}
	path := rest
	if strings.HasPrefix(rest, "//") {
		u, err := url.Parse("file:" + rest)
		if err != nil {
			return "", keys.Invalidf("key id %q is not a valid file URI: %v; use file:/absolute/path", keys.RedactKeyID(keyID), errors.Unwrap(err))
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", keys.Invalidf("key id %q names host %q: only local files can be used, as file:///absolute/path or file:/absolute/path", keys.RedactKeyID(keyID), u.Host)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return "", keys.Invalidf("key id %q has a query or fragment: file: key ids take no parameters, use plugin config instead", keys.RedactKeyID(keyID))
		}
		path = u.Path
	}
	if path == "" || !filepath.IsAbs(path) {
		return "", keys.Invalidf("key id %q does not name an absolute path: use file:/absolute/path/to/key.pem, since notation may run from any directory", keys.RedactKeyID(keyID))
	}
	return filepath.Clean(path), nil
}

func (b Backend) readKey(path string, cfg keys.Config) (crypto.Signer, error) {
	data, err := keys.ReadFile("key file", path, maxKeyFileSize, true)
	if err != nil {
		return nil, err
	}
	block, err := findKeyBlock(data, path)
	if err != nil {
		return nil, err
	}
	encrypted := block.Type == "ENCRYPTED PRIVATE KEY"
	pass, havePass, err := b.passphrase(cfg)
	if err != nil {
		return nil, err
	}
	if havePass && !encrypted {
		return nil, keys.Invalidf("key file %q is not encrypted but a passphrase is configured: remove %s/%s from the plugin config, or encrypt the key with `openssl pkcs8 -topk8 -v2 aes-256-cbc`",
			path, ConfigPassphraseFile, ConfigPassphraseEnv)
	}
	der := block.Bytes
	if encrypted {
		if !havePass {
			return nil, keys.Invalidf("key file %q is encrypted: set plugin config %s=<path of a file holding the passphrase> or %s=<name of an environment variable holding it>",
				path, ConfigPassphraseFile, ConfigPassphraseEnv)
		}
		der, err = decryptPKCS8(der, pass)
		if err != nil {
			return nil, fmt.Errorf("key file %q: %w", path, err)
		}
	}
	key, err := parseKey(block.Type, der)
	if err != nil {
		if encrypted {
			return nil, keys.Deniedf("key file %q could not be decrypted: the passphrase is wrong", path)
		}
		return nil, keys.Invalidf("key file %q holds a %q PEM block that does not parse: %v", path, block.Type, err)
	}
	if _, err := keys.SpecOf(key.Public()); err != nil {
		return nil, keys.Invalidf("key file %q: %w", path, err)
	}
	return key, nil
}

// findKeyBlock returns the one private key PEM block of data.
func findKeyBlock(data []byte, path string) (*pem.Block, error) {
	var found *pem.Block
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		switch block.Type {
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			if found != nil {
				return nil, keys.Invalidf("key file %q holds more than one private key: keep one key a file", path)
			}
			if _, ok := block.Headers["DEK-Info"]; ok {
				return nil, keys.Invalidf("key file %q uses legacy PEM encryption (Proc-Type/DEK-Info), which is insecure and not supported: convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc -in OLD -out NEW`", path)
			}
			found = block
		case "EC PARAMETERS", "CERTIFICATE":
			// openssl ecparam -genkey writes EC PARAMETERS; some tools keep
			// the certificate beside the key. Neither is the key.
		default:
			return nil, keys.Invalidf("key file %q holds a PEM block of type %q, which is not a private key", path, block.Type)
		}
	}
	if found == nil {
		if len(bytes.TrimSpace(data)) > 0 && !bytes.Contains(data, []byte("-----BEGIN")) {
			return nil, keys.Invalidf("key file %q is not PEM: convert a DER key with `openssl pkcs8 -topk8 -nocrypt -inform DER -in KEY.der -out KEY.pem`", path)
		}
		return nil, keys.Invalidf("key file %q holds no PEM private key (expected a PRIVATE KEY, RSA PRIVATE KEY, EC PRIVATE KEY or ENCRYPTED PRIVATE KEY block)", path)
	}
	return found, nil
}

func parseKey(typ string, der []byte) (crypto.Signer, error) {
	var key any
	var err error
	switch typ {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(der)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(der)
	default: // PRIVATE KEY, decrypted ENCRYPTED PRIVATE KEY
		key, err = x509.ParsePKCS8PrivateKey(der)
	}
	if err != nil {
		return nil, err
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	default:
		return nil, keys.Invalidf("%T keys are not supported: notation signs with RSA or EC keys", key)
	}
}

// validEnvName reports whether s is a POSIX environment variable name,
// [A-Za-z_][A-Za-z0-9_]*. (A hand check: a regexp compiled at start-up costs
// every plugin process a third of a millisecond.)
func validEnvName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// passphrase returns the configured passphrase and whether one is configured.
func (b Backend) passphrase(cfg keys.Config) ([]byte, bool, error) {
	file, hasFile := cfg[ConfigPassphraseFile]
	env, hasEnv := cfg[ConfigPassphraseEnv]
	switch {
	case hasFile && hasEnv:
		return nil, false, keys.Invalidf("plugin config sets both %s and %s: keep one", ConfigPassphraseFile, ConfigPassphraseEnv)
	case hasFile:
		if !filepath.IsAbs(file) {
			return nil, false, keys.Invalidf("plugin config %s=%q is not an absolute path: give the full path, since notation may run from any directory", ConfigPassphraseFile, file)
		}
		data, err := keys.ReadFile("passphrase file", file, maxPassphraseFileSize, true)
		if err != nil {
			return nil, false, err
		}
		data = bytes.TrimSuffix(data, []byte("\n"))
		data = bytes.TrimSuffix(data, []byte("\r"))
		if len(data) == 0 {
			return nil, false, keys.Invalidf("passphrase file %q is empty", file)
		}
		return data, true, nil
	case hasEnv:
		if !validEnvName(env) {
			return nil, false, keys.Invalidf("plugin config %s=%q is not an environment variable name: give the variable's name, not the passphrase", ConfigPassphraseEnv, env)
		}
		v := b.Getenv(env)
		if v == "" {
			return nil, false, keys.Invalidf("environment variable %s named by plugin config %s is unset or empty in notation's environment: export it before running notation", env, ConfigPassphraseEnv)
		}
		return []byte(v), true, nil
	}
	return nil, false, nil
}
