//go:build !cgo

package pkcs11key

import (
	"context"
	"crypto"

	"github.com/keyward/keyward/keys"
)

// errNoCgo explains why a binary built without cgo cannot open tokens.
func errNoCgo() error {
	return invalidf("this keyward binary was built without cgo (CGO_ENABLED=0), so it cannot load PKCS#11 modules: install a release build of keyward, or build it with CGO_ENABLED=1 and a C compiler")
}

// Open refuses: loading a PKCS#11 module needs cgo. The key id is parsed
// first, so that a malformed id still gets its own message.
func (b Backend) Open(_ context.Context, keyID string, cfg keys.Config) (*keys.Key, error) {
	if _, err := ParseURI(keyID); err != nil {
		return nil, err
	}
	return nil, errNoCgo()
}

// Describe refuses like Open.
func (b Backend) Describe(_ context.Context, keyID string, _ keys.Config) (crypto.PublicKey, error) {
	if _, err := ParseURI(keyID); err != nil {
		return nil, err
	}
	return nil, errNoCgo()
}
