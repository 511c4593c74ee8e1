// Package version holds the version of the keyward binaries.
//
// The version is plain SemVer without a "v" prefix: notation compares plugin
// versions with the semver.org grammar and rejects anything else when a
// signature names keyward as its verification plugin.
package version

// Version is the SemVer of this build. Release builds may override it with
// -ldflags "-X github.com/keyward/keyward/internal/version.Version=1.2.3".
var Version = "0.1.0"

// Commit is the git commit the binary was built from, set by the Makefile;
// empty for `go build` and `go run`.
var Commit = ""

// String returns the version with the commit when one is known, for humans.
func String() string {
	if Commit == "" {
		return Version
	}
	return Version + " (commit " + Commit + ")"
}
