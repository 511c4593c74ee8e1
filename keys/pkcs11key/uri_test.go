package pkcs11key

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/keys"
)

func ptr[T any](v T) *T { return &v }

func TestParseURI(t *testing.T) {
	tests := []struct {
		in   string
		want URI
	}{
		{"pkcs11:", URI{}},
		{"PKCS11:token=a", URI{Token: ptr("a")}},
		{"pkcs11:token=release;object=signing-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin",
			URI{Token: ptr("release"), Object: ptr("signing-key"), ModulePath: "/usr/lib/softhsm/libsofthsm2.so", PINSource: "file:/run/secrets/pin"}},
		{"pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;serial=a19351ab238d3f82;model=SoftHSM%20v2;slot-id=596459394",
			URI{Token: ptr("My Token"), Manufacturer: ptr("SoftHSM project"), Serial: ptr("a19351ab238d3f82"), Model: ptr("SoftHSM v2"), SlotID: ptr(uint64(596459394))}},
		{"pkcs11:id=%01%02%fF;type=private", URI{ID: []byte{1, 2, 0xff}, HasID: true, Type: "private"}},
		{"pkcs11:id=", URI{ID: []byte{}, HasID: true}},
		{"pkcs11:object=", URI{Object: ptr("")}},
		// '&' is legal in the path, '/', '?' and '|' in the query.
		{"pkcs11:object=a&b?module-path=/x/y.so", URI{Object: ptr("a&b"), ModulePath: "/x/y.so"}},
		{"pkcs11:object=a%3Bb", URI{Object: ptr("a;b")}},
		{"pkcs11:?module-name=softhsm2", URI{ModuleName: "softhsm2"}},
		{"pkcs11:object=k?", URI{Object: ptr("k")}},
	}
	for _, tt := range tests {
		got, err := ParseURI(tt.in)
		if err != nil {
			t.Errorf("ParseURI(%q): %v", tt.in, err)
			continue
		}
		if got.String() != tt.want.String() || !bytes.Equal(got.ID, tt.want.ID) || got.HasID != tt.want.HasID {
			t.Errorf("ParseURI(%q) = %s, want %s", tt.in, got, &tt.want)
		}
	}
}

func TestParseURIErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"file:/x", "not a PKCS#11 URI"},
		{"pkcs11:token=a;token=b", "sets token more than once"},
		{"pkcs11:token=a;;object=b", "empty attribute"},
		{"pkcs11:token", `attribute "token" has no value`},
		{"pkcs11:label=x", `unknown attribute "label"`},
		{"pkcs11:x-vendor=1", `unknown attribute "x-vendor"`},
		{"pkcs11:library-version=1.2", "library-version is not supported"},
		{"pkcs11:slot-description=x", "slot-description is not supported"},
		{"pkcs11:module-path=/x.so", "module-path is a query attribute: move it to the URI's query"},
		{"pkcs11:?token=a", "token is a path attribute: move it to the URI's path"},
		{"pkcs11:object=a%2", "is not a %XX escape"},
		{"pkcs11:object=a%zz", "is not a %XX escape"},
		{"pkcs11:object=a b", "must be percent-encoded as %20"},
		{"pkcs11:object=a/b", "must be percent-encoded as %2F"},
		{"pkcs11:?module-path=/a&b", "a query attribute has no '='"},
		{"pkcs11:object=a#frag", "fragment"},
		{"pkcs11:slot-id=x1", "not a decimal number"},
		{"pkcs11:slot-id=", "not a decimal number"},
		{"pkcs11:slot-id=99999999999999999999999", "not a decimal number"},
		{"pkcs11:type=cert", "type=cert does not name a signing key"},
		{"pkcs11:type=public", "type=public does not name a signing key"},
		{"pkcs11:type=key", "is not an object type"},
		{"pkcs11:?module-name=/usr/lib/x.so", "without directory"},
		{"pkcs11:?module-path=", "module-path is empty"},
		{"pkcs11:?pin-source=", "pin-source is empty"},
		{"pkcs11:object=" + strings.Repeat("a", maxURILength), "more than"},
	}
	for _, tt := range tests {
		_, err := ParseURI(tt.in)
		if err == nil {
			t.Errorf("ParseURI(%q) succeeded, want error containing %q", tt.in, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURI(%q) error %q, want it to contain %q", tt.in, err, tt.want)
		}
		if !isKind(err, keys.KindInvalid) {
			t.Errorf("ParseURI(%q) error kind %v, want KindInvalid", tt.in, keys.KindOf(err))
		}
	}
}

// TestParseURINeverEchoesPIN: pin-value is refused without quoting it, and
// misspelt query attributes (which may hold a PIN) are redacted.
func TestParseURINeverEchoesPIN(t *testing.T) {
	const pin = "s3cr3t-4711"
	for _, in := range []string{
		"pkcs11:token=a?pin-value=" + pin,
		"pkcs11:token=a?module-path=/x.so&pin-value=" + pin,
		"pkcs11:token=a?pin=" + pin,
		"pkcs11:token=a?" + pin,
		"pkcs11:token=a;bogus=1?pin=" + pin,
		"pkcs11:token=a#?pin=" + pin,
	} {
		_, err := ParseURI(in)
		if err == nil {
			t.Errorf("ParseURI(%q) succeeded", in)
			continue
		}
		if strings.Contains(err.Error(), pin) {
			t.Errorf("ParseURI(%q) error repeats the PIN: %v", in, err)
		}
	}
	_, err := ParseURI("pkcs11:token=a?pin-value=" + pin)
	for _, want := range []string{"pin-value", "refuses", "process list", "pin-source=file:", EnvPIN} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("pin-value error %v does not mention %q", err, want)
		}
	}
}

func TestURIStringRoundTrip(t *testing.T) {
	u := URI{Token: ptr("a b;c&d"), Serial: ptr("01"), SlotID: ptr(uint64(7)), Object: ptr("key/1?"), ID: []byte{0, 0x2f, 0xff}, HasID: true,
		Type: "private", ModulePath: "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", PINSource: "file:/run/pin&x"}
	s := u.String()
	if want := "pkcs11:token=a%20b%3Bc%26d;serial=01;slot-id=7;object=key%2F1%3F;id=%00%2f%ff;type=private?module-path=/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so&pin-source=file:/run/pin%26x"; s != want {
		t.Errorf("String() = %s\nwant       %s", s, want)
	}
	back, err := ParseURI(s)
	if err != nil {
		t.Fatal(err)
	}
	if back.String() != s {
		t.Errorf("round trip: %s != %s", back, s)
	}
}

func TestIDHint(t *testing.T) {
	if !isHexText([]byte("01")) || isHexText([]byte{1}) || isHexText([]byte("0")) || isHexText([]byte("zz")) {
		t.Error("isHexText")
	}
	if got := percentHex("01a2"); got != "%01%a2" {
		t.Errorf("percentHex = %q", got)
	}
}

func FuzzParseURI(f *testing.F) {
	for _, s := range []string{
		"pkcs11:token=release;object=signing-key?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/secrets/pin",
		"pkcs11:id=%01%02;type=private;slot-id=5", "pkcs11:object=a&b?module-name=x", "pkcs11:?pin-value=1", "pkcs11:%", "pkcs11:=;=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			if !isKind(err, keys.KindInvalid) {
				t.Fatalf("error of kind %v: %v", keys.KindOf(err), err)
			}
			return
		}
		// What parses formats to a URI that parses to the same thing.
		back, err := ParseURI(u.String())
		if err != nil {
			t.Fatalf("ParseURI(%q).String() = %q does not parse: %v", s, u.String(), err)
		}
		if back.String() != u.String() {
			t.Fatalf("round trip %q -> %q -> %q", s, u.String(), back.String())
		}
	})
}

func TestCacheName(t *testing.T) {
	a, _ := ParseURI("pkcs11:token=t;object=k?module-path=/m.so&pin-source=file:/p1")
	b, _ := ParseURI("pkcs11:token=t;object=k?pin-source=/p2")
	c, _ := ParseURI("pkcs11:token=t;object=other?module-path=/m.so")
	if cacheName(a, "/m.so") != cacheName(b, "/m.so") {
		t.Error("the PIN source and the way the module is named change the cache entry")
	}
	if cacheName(a, "/m.so") == cacheName(a, "/n.so") || cacheName(a, "/m.so") == cacheName(c, "/m.so") {
		t.Error("different modules or keys share a cache entry")
	}
	if (Backend{Getenv: env(nil)}).cache() != nil {
		t.Error("a cache without HOME or XDG_CACHE_HOME")
	}
	if c := (Backend{Getenv: env(map[string]string{"HOME": "/home/u"})}).cache(); c == nil || c.dir != "/home/u/.cache/keyward/pkcs11" {
		t.Errorf("cache %+v", c)
	}
}

// isKind reports whether err's chain holds a [*keys.Error] of the kind.
func isKind(err error, kind keys.ErrorKind) bool {
	var ke *keys.Error
	return errors.As(err, &ke) && ke.Kind == kind
}
