// Package dirs computes the folders keyward reads and writes outside the
// repository: notation's configuration folder ({NOTATION_CONFIG}, which
// holds trustpolicy.json and truststore/) and keyward's cache folder. Every
// function takes the environment as a getenv function (and the operating
// system as goos where it matters), so that callers decide what the
// environment is and tests need no global state.
package dirs

import "path/filepath"

// ConfigDir returns notation's configuration folder ({NOTATION_CONFIG}) as
// notation v1.3.2 computes it from the environment (notation-go v1.3.2
// dir/path.go): $NOTATION_CONFIG if set, else os.UserConfigDir()/notation
// for goos ($XDG_CONFIG_HOME or $HOME/.config on Linux and BSDs,
// $HOME/Library/Application Support on darwin, %AppData% on windows), else
// ".notation" as notation falls back.
func ConfigDir(goos string, getenv func(string) string) string {
	if d := getenv("NOTATION_CONFIG"); d != "" {
		return d
	}
	base, ok := userConfigDir(goos, getenv)
	if !ok {
		return ".notation"
	}
	return filepath.Join(base, "notation")
}

// userConfigDir mirrors os.UserConfigDir for goos with getenv.
func userConfigDir(goos string, getenv func(string) string) (string, bool) {
	switch goos {
	case "windows":
		d := getenv("AppData")
		return d, d != ""
	case "darwin", "ios":
		h := getenv("HOME")
		if h == "" {
			return "", false
		}
		return filepath.Join(h, "Library", "Application Support"), true
	case "plan9":
		h := getenv("home")
		if h == "" {
			return "", false
		}
		return filepath.Join(h, "lib"), true
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" {
		return d, filepath.IsAbs(d)
	}
	h := getenv("HOME")
	if h == "" {
		return "", false
	}
	return filepath.Join(h, ".config"), true
}

// TrustStoreDir returns {NOTATION_CONFIG}/truststore, the folder that holds
// notation's x509/ trust stores.
func TrustStoreDir(goos string, getenv func(string) string) string {
	return filepath.Join(ConfigDir(goos, getenv), "truststore")
}

// PolicyFile returns {NOTATION_CONFIG}/trustpolicy.json, the one trust
// policy file notation v1.3.2 reads.
func PolicyFile(goos string, getenv func(string) string) string {
	return filepath.Join(ConfigDir(goos, getenv), "trustpolicy.json")
}

// CacheDir returns keyward's cache folder in an environment:
// $XDG_CACHE_HOME/keyward, else $HOME/.cache/keyward, or "" when neither
// variable is an absolute path. Caches hold no secrets; deleting the folder
// is always safe.
func CacheDir(getenv func(string) string) string {
	base := getenv("XDG_CACHE_HOME")
	if !filepath.IsAbs(base) {
		home := getenv("HOME")
		if !filepath.IsAbs(home) {
			return ""
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "keyward")
}
