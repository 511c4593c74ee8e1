//go:build !cgo

package pkcs11key

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/keys"
)

func TestOpenWithoutCgo(t *testing.T) {
	_, err := Backend{}.Open(context.Background(), "pkcs11:token=a;object=b?module-path=/x.so", nil)
	if err == nil || !isKind(err, keys.KindInvalid) || !strings.Contains(err.Error(), "built without cgo") {
		t.Errorf("Open without cgo: %v", err)
	}
	_, err = Backend{}.Open(context.Background(), "pkcs11:bogus=1", nil)
	if err == nil || !strings.Contains(err.Error(), `unknown attribute "bogus"`) {
		t.Errorf("a malformed id gets its own message without cgo: %v", err)
	}
	if _, err := (Backend{}).Describe(context.Background(), "pkcs11:token=a?module-path=/x.so", nil); err == nil || !strings.Contains(err.Error(), "built without cgo") {
		t.Errorf("Describe without cgo: %v", err)
	}
	if _, err := List(ListOptions{Module: "/x.so"}); err == nil || !strings.Contains(err.Error(), "built without cgo") {
		t.Errorf("List without cgo: %v", err)
	}
}
