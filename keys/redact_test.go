package keys_test

import (
	"strings"
	"testing"

	"github.com/keyward/keyward/keys"
)

func TestRedactKeyID(t *testing.T) {
	const pin = "4711-s3cr3t"
	for _, tc := range []struct{ in, want string }{
		{"pkcs11:token=t;pin-value=" + pin + ";object=k", "pkcs11:token=t;pin-value=...;object=k"},
		{"pkcs11:pin-value=" + pin, "pkcs11:pin-value=..."},
		{"pkcs11:token=t?module-path=/m.so&pin-value=" + pin, "pkcs11:token=t?module-path=/m.so&pin-value=..."},
		{"pkcs11:token=t?PIN-VALUE=" + pin + "&pin-source=file:/p", "pkcs11:token=t?PIN-VALUE=...&pin-source=file:/p"},
		{"pkcs11:token=t;pin%2dvalue=" + pin, "pkcs11:token=t;pin%2dvalue=..."},
		{"pkcs11:token=t;pin=" + pin + "?x=1", "pkcs11:token=t;pin=...?x=1"},
		{"file:/k.pem?password=" + pin, "file:/k.pem?password=..."},
		{"pkcs12:userpin=" + pin, "pkcs12:userpin=..."},
		{"pkcs11:token=t;object=k?module-path=/m.so", "pkcs11:token=t;object=k?module-path=/m.so"},
		{"file:/etc/keys/key.pem", "file:/etc/keys/key.pem"},
	} {
		got := keys.RedactKeyID(tc.in)
		if got != tc.want {
			t.Errorf("RedactKeyID(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(got, pin) {
			t.Errorf("RedactKeyID(%q) keeps the PIN", tc.in)
		}
	}
}
