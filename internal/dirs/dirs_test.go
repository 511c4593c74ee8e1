package dirs

import (
	"path/filepath"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDir(t *testing.T) {
	tests := []struct {
		goos string
		env  map[string]string
		want string
	}{
		{"linux", map[string]string{"NOTATION_CONFIG": "/cfg", "XDG_CONFIG_HOME": "/x"}, "/cfg"},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "/x", "HOME": "/h"}, "/x/notation"},
		{"linux", map[string]string{"HOME": "/h"}, "/h/.config/notation"},
		{"linux", map[string]string{"XDG_CONFIG_HOME": "relative", "HOME": "/h"}, ".notation"},
		{"linux", map[string]string{}, ".notation"},
		{"darwin", map[string]string{"HOME": "/Users/a"}, "/Users/a/Library/Application Support/notation"},
		{"darwin", map[string]string{}, ".notation"},
		{"plan9", map[string]string{"home": "/usr/a"}, "/usr/a/lib/notation"},
		{"windows", map[string]string{"AppData": `C:\Users\a\AppData\Roaming`}, filepath.Join(`C:\Users\a\AppData\Roaming`, "notation")},
		{"windows", map[string]string{"HOME": "/h"}, ".notation"},
	}
	for _, tt := range tests {
		if got := ConfigDir(tt.goos, env(tt.env)); got != tt.want {
			t.Errorf("ConfigDir(%s, %v) = %q, want %q", tt.goos, tt.env, got, tt.want)
		}
	}
	if got := TrustStoreDir("linux", env(map[string]string{"HOME": "/h"})); got != "/h/.config/notation/truststore" {
		t.Errorf("TrustStoreDir = %q", got)
	}
	if got := PolicyFile("linux", env(map[string]string{"HOME": "/h"})); got != "/h/.config/notation/trustpolicy.json" {
		t.Errorf("PolicyFile = %q", got)
	}
}

func TestCacheDir(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"XDG_CACHE_HOME": "/c", "HOME": "/h"}, "/c/keyward"},
		{map[string]string{"XDG_CACHE_HOME": "rel", "HOME": "/h"}, "/h/.cache/keyward"},
		{map[string]string{"HOME": "/h"}, "/h/.cache/keyward"},
		{map[string]string{"HOME": "h"}, ""},
	} {
		if got := CacheDir(env(tc.env)); got != tc.want {
			t.Errorf("CacheDir(%v) = %q, want %q", tc.env, got, tc.want)
		}
	}
}
