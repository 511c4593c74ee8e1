package pkcs11key

import (
	"strings"
	"testing"
)

// pinKeyIDs are key ids a person may write with the PIN in them: pin-value
// in the path (where it does not belong), in the query, misspelt, in
// another case, percent-encoded, and beside another mistake that produces
// its own message.
func pinKeyIDs(pin string) []string {
	return []string{
		"pkcs11:token=t;pin-value=" + pin + ";object=k",
		"pkcs11:pin-value=" + pin,
		"pkcs11:token=t;PIN-VALUE=" + pin,
		"pkcs11:token=t;pin-value=" + pin + ";bogus=1",
		"pkcs11:token=t;pin=" + pin + ";object=k",
		"pkcs11:token=t;pin%2Dvalue=" + pin,
		"pkcs11:token=t;token=u;pin=" + pin,
		"pkcs11:token=t;pin=" + pin + "#frag",
		"pkcs11:token=t;pin=" + pin + "?module-path=relative.so",
		"pkcs11:token=t;object=k?pin-value=" + pin,
		"pkcs11:token=t;object=k?module-path=/m.so&pin-value=" + pin + "&pin-source=file:/p",
		"pkcs11:token=t;object=k?Pin-Value=" + pin,
		"pkcs11:token=t;object=k?pin=" + pin,
	}
}

// TestPINNeverInURIErrors: whatever else is wrong with a key id, the error
// does not repeat a PIN written into it, in the path or the query.
func TestPINNeverInURIErrors(t *testing.T) {
	const pin = "918273645"
	for _, id := range pinKeyIDs(pin) {
		_, err := ParseURI(id)
		if err == nil {
			t.Errorf("ParseURI(%q) succeeded", id)
			continue
		}
		if strings.Contains(err.Error(), pin) {
			t.Errorf("ParseURI(%q) error repeats the PIN: %v", id, err)
		}
	}
	_, err := ParseURI("pkcs11:token=t;pin-value=" + pin + ";object=k")
	if err == nil || !strings.Contains(err.Error(), "refuses") || !strings.Contains(err.Error(), "pin-source=file:") {
		t.Errorf("pin-value in the path: %v, want the pin-value refusal pointing to pin-source", err)
	}
}

// TestPINNeverInPINSourceErrors: the PIN typed where its file belongs
// (--pin-source 1234, pin-source=1234) is not quoted back.
func TestPINNeverInPINSourceErrors(t *testing.T) {
	const pin = "918273645"
	for _, v := range []string{pin, "|" + pin, "x:" + pin} {
		if _, err := ReadPIN(v); err == nil || strings.Contains(err.Error(), pin) {
			t.Errorf("ReadPIN(%q) = %v, want an error without the value", v, err)
		}
	}
	if _, err := ReadPIN("pin.txt"); err == nil || !strings.Contains(err.Error(), `"pin.txt"`) {
		t.Errorf("ReadPIN(pin.txt) = %v, want the file name quoted", err)
	}
}
