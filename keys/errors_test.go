package keys_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keyward/keyward/keys"
)

func TestErrorKinds(t *testing.T) {
	base := errors.New("the token refused the PIN")
	tests := []struct {
		name string
		err  error
		want keys.ErrorKind
	}{
		{"invalid", keys.Invalidf("key file %q does not exist", "/k.pem"), keys.KindInvalid},
		{"denied", keys.Deniedf("wrong passphrase"), keys.KindAccessDenied},
		{"with kind", keys.WithKind(keys.KindBusy, base), keys.KindBusy},
		{"wrapped by a caller", fmt.Errorf("open key: %w", keys.WithKind(keys.KindTimeout, base)), keys.KindTimeout},
		{"unclassified", base, keys.KindInternal},
		{"empty kind", &keys.Error{Err: base}, keys.KindInternal},
		{"nil", nil, keys.KindInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := keys.KindOf(tc.err); got != tc.want {
				t.Errorf("KindOf(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}

	err := fmt.Errorf("sign: %w", keys.WithKind(keys.KindAccessDenied, base))
	var ke *keys.Error
	if !errors.As(err, &ke) || ke.Kind != keys.KindAccessDenied {
		t.Fatalf("errors.As(%v) found no access-denied *keys.Error", err)
	}
	if !errors.Is(err, base) {
		t.Errorf("errors.Is does not reach the wrapped error through *keys.Error")
	}
	if got := ke.Error(); got != base.Error() {
		t.Errorf("Error() = %q, want the wrapped message %q", got, base.Error())
	}
	if keys.WithKind(keys.KindInvalid, nil) != nil {
		t.Error("WithKind(kind, nil) is not nil")
	}
}
