// Package keys opens the signing keys that keyward's notation plugin signs
// with, and decides whether a key and its certificate chain are fit to sign.
//
// A key is named by a key id whose URI scheme selects a [Backend]: "file:" for
// PEM files (package keys/filekey), "pkcs11:" for tokens (package
// keys/pkcs11key). Every backend returns the same [Key]: a crypto.Signer and
// the certificate chain, leaf first. [Opener.Open] then runs the one shared
// pre-signing check, [CheckChain], so that both backends refuse exactly what
// notation would reject, with a message that names the certificate and the fix.
//
// Secrets (passphrases, PINs) reach backends only through files or
// environment variables, never through the key id or plugin config, which are
// visible in the signer's process list and in notation's signingkeys.json.
package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/chainrules"
)

// Key is an opened signing key with its certificate chain.
type Key struct {
	// Signer signs digests. ECDSA signers return ASN.1 DER signatures and
	// RSA signers honour *rsa.PSSOptions, as crypto.Signer implementations do.
	Signer crypto.Signer
	// Chain is the certificate chain, leaf first, ending with the root.
	Chain []*x509.Certificate
	// ChainSource says where the chain came from, for error messages, e.g.
	// `cert_chain file "/etc/keys/chain.pem"`.
	ChainSource string
	// Close releases what the backend holds (a token session); may be nil.
	Close func() error
}

// Spec returns the notation key spec of the key's public key.
func (k *Key) Spec() (Spec, error) {
	return SpecOf(k.Signer.Public())
}

// Release calls Close when the backend set one.
func (k *Key) Release() error {
	if k == nil || k.Close == nil {
		return nil
	}
	return k.Close()
}

// Config is the plugin configuration notation passes with every request
// (`--plugin-config key=value`, merged with the stored key's config).
type Config map[string]string

// Plugin config keys shared by every backend. Backend-specific keys are
// declared by each [Backend]; see README.md "Key configuration".
const (
	// ConfigCertChain is the path of a PEM bundle: leaf first, then
	// intermediates, ending with the root.
	ConfigCertChain = "cert_chain"
)

// Backend opens keys of one key-id scheme.
type Backend interface {
	// Scheme is the key-id scheme the backend serves, without the colon.
	Scheme() string
	// ConfigKeys lists the plugin config keys the backend reads.
	ConfigKeys() []string
	// Open opens the key named by keyID. The returned chain is checked by
	// the caller; the backend only assembles it.
	Open(ctx context.Context, keyID string, cfg Config) (*Key, error)
}

// Describer is implemented by backends that can name a key's public key
// more cheaply than by opening the key, for describe-key: notation runs
// describe-key and generate-signature in two processes, and only the one that
// signs needs the private key and the full chain check.
type Describer interface {
	Describe(ctx context.Context, keyID string, cfg Config) (crypto.PublicKey, error)
}

// Opener chooses a [Backend] by the key id's scheme, opens the key and checks
// its chain with [CheckChain].
type Opener struct {
	backends []Backend
	// now returns the time chains are checked at.
	now func() time.Time
	// chains remembers chains whose signatures verified; may be nil.
	chains *ChainCache
}

// NewOpener returns an Opener serving the given backends.
func NewOpener(backends ...Backend) *Opener {
	return &Opener{backends: backends, now: time.Now}
}

// WithClock returns a copy of o that checks certificate validity at the time
// now returns instead of the wall clock.
func (o *Opener) WithClock(now func() time.Time) *Opener {
	c := *o
	c.now = now
	return &c
}

// WithChainCache returns a copy of o that remembers verified chains in c.
func (o *Opener) WithChainCache(c *ChainCache) *Opener {
	cp := *o
	cp.chains = c
	return &cp
}

// Open opens and checks the key named by keyID. ignored lists plugin config
// keys the caller consumes itself, which the backend does not need to know.
func (o *Opener) Open(ctx context.Context, keyID string, cfg Config, ignored ...string) (*Key, error) {
	b, err := o.backend(keyID)
	if err != nil {
		return nil, err
	}
	if err := checkConfigKeys(b, cfg, ignored); err != nil {
		return nil, err
	}
	k, err := b.Open(ctx, keyID, cfg)
	if err != nil {
		return nil, err
	}
	issued := chainrules.IssuedBy
	known := o.chains.verified(k.Chain)
	if known {
		issued = chainrules.NamedBy
	}
	if err := checkChain(k.Signer.Public(), k.Chain, k.ChainSource, o.now(), issued); err != nil {
		_ = k.Release()
		return nil, err
	}
	if !known {
		o.chains.remember(k.Chain)
	}
	return k, nil
}

// Describe returns the key spec of the key named by keyID. Backends that
// implement [Describer] answer without touching the private key; for the
// others the key is opened and checked as by Open.
func (o *Opener) Describe(ctx context.Context, keyID string, cfg Config, ignored ...string) (Spec, error) {
	b, err := o.backend(keyID)
	if err != nil {
		return Spec{}, err
	}
	if err := checkConfigKeys(b, cfg, ignored); err != nil {
		return Spec{}, err
	}
	if d, ok := b.(Describer); ok {
		pub, err := d.Describe(ctx, keyID, cfg)
		if err != nil {
			return Spec{}, err
		}
		return SpecOf(pub)
	}
	k, err := o.Open(ctx, keyID, cfg, ignored...)
	if err != nil {
		return Spec{}, err
	}
	defer k.Release()
	return k.Spec()
}

func (o *Opener) backend(keyID string) (Backend, error) {
	scheme, _, ok := strings.Cut(keyID, ":")
	if ok {
		for _, b := range o.backends {
			if strings.EqualFold(scheme, b.Scheme()) {
				return b, nil
			}
		}
	}
	var schemes []string
	for _, b := range o.backends {
		schemes = append(schemes, b.Scheme()+":")
	}
	return nil, Invalidf("key id %q is not supported: it must start with one of %s "+
		"(for example file:/etc/keyward/signing.key)", RedactKeyID(keyID), strings.Join(schemes, ", "))
}

func checkConfigKeys(b Backend, cfg Config, ignored []string) error {
	known := append(slices.Clone(b.ConfigKeys()), ignored...)
	var unknown []string
	for k := range cfg {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	sort.Strings(known)
	return Invalidf("plugin config key %q is not used with %s: keys; the supported keys are %s "+
		"(a misspelt key would otherwise be ignored silently)",
		unknown[0], b.Scheme(), strings.Join(known, ", "))
}
