package reference

import (
	"errors"
	"strings"
	"testing"
)

// TestParseImage checks the expansion of Kubernetes image names to the
// references the kubelet pulls (github.com/distribution/reference
// ParseNormalizedNamed followed by TagNameOnly).
func TestParseImage(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                                "docker.io/library/nginx:latest",
		"nginx:1.27":                           "docker.io/library/nginx:1.27",
		"nginx@" + dg:                          "docker.io/library/nginx@" + dg,
		"nginx:1.27@" + dg:                     "docker.io/library/nginx:1.27@" + dg,
		"user/app:1":                           "docker.io/user/app:1",
		"user/team/app":                        "docker.io/user/team/app:latest",
		"docker.io/nginx":                      "docker.io/library/nginx:latest",
		"index.docker.io/nginx:1":              "docker.io/library/nginx:1",
		"index.docker.io/user/app":             "docker.io/user/app:latest",
		"docker.io/library/nginx:latest":       "docker.io/library/nginx:latest",
		"localhost/app":                        "localhost/app:latest",
		"localhost:5000/app:v1":                "localhost:5000/app:v1",
		"127.0.0.1:5000/team/app@" + dg:        "127.0.0.1:5000/team/app@" + dg,
		"host:5000/x@" + dg:                    "host:5000/x@" + dg,
		"registry.example.com/a/b/c:v1.2-rc_3": "registry.example.com/a/b/c:v1.2-rc_3",
		"[::1]:5000/app":                       "[::1]:5000/app:latest",
	} {
		r, err := ParseImage(in)
		if err != nil {
			t.Errorf("ParseImage(%q): %v", in, err)
			continue
		}
		if r.Raw != want {
			t.Errorf("ParseImage(%q) = %q, want %q", in, r.Raw, want)
		}
		if !strings.HasPrefix(want, r.Scope) || r.Registry == "" || r.Repository == "" {
			t.Errorf("ParseImage(%q): scope %q registry %q repository %q", in, r.Scope, r.Registry, r.Repository)
		}
	}
	if r, _ := ParseImage("nginx:1.27@" + dg); r.Tag != "1.27" || string(r.Digest) != dg || r.Object() != dg {
		t.Errorf("tag and digest: %+v", r)
	}
	for in, want := range map[string]string{
		"":                         "is empty",
		"NGINX":                    `upper-case repository "library/NGINX"`,
		"user/App:1":               `upper-case repository "user/App"`,
		"registry.example.com/App": `upper-case repository "App"`,
		// An upper-case first component is a host, as in the runtimes,
		// which reach the same registry as the lower-case host: refused,
		// as the trust policy's scopes tell the cases apart.
		"Registry/app:v1":                   `upper-case registry host "Registry"`,
		"Registry.Example.com/team/app:v1":  `upper-case registry host "Registry.Example.com"`,
		"LOCALHOST:5000/app":                `upper-case registry host "LOCALHOST:5000"`,
		"registry.example.com:443/team/app": `default port: write it without :443`,
		"[::1]:443/app":                     `default port: write it without :443`,
		strings.Repeat("a", 64):             "bare image ID",
		"nginx@sha256:abc":                  "is not a valid image reference",
		"nginx:bad tag":                     "is not a valid image reference",
		"https://example.com/app":           "is not a valid image reference",
		"example.com/app:":                  "is not a valid image reference",
		" nginx":                            "is not a valid image reference",
		"example.com//app":                  "is not a valid image reference",
		"example.com/app@":                  "is not a valid image reference",
	} {
		_, err := ParseImage(in)
		var re *Error
		if !errors.As(err, &re) || re.Raw != in || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseImage(%q) = %v, want *Error containing %q", in, err, want)
		}
	}
}

// FuzzParseImage checks that ParseImage never panics and that what it
// accepts is a reference Parse accepts unchanged, with a tag or a digest.
func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"nginx", "user/app:1", "localhost:5000/x@" + dg, "a:b@c", "[::1]:1/x", "Foo/bar"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseImage(s)
		if err != nil {
			return
		}
		again, err := Parse(r.Raw)
		if err != nil || again != r || (r.Tag == "" && r.Digest == "") {
			t.Fatalf("ParseImage(%q) = %+v; Parse of it: %+v, %v", s, r, again, err)
		}
	})
}
