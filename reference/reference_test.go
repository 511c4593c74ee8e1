package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

const dg = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in                                   string
		registry, repository, tag, scope, dg string
	}{
		{"registry.example.com/app:v1", "registry.example.com", "app", "v1", "registry.example.com/app", ""},
		{"localhost:5000/team/app@" + dg, "localhost:5000", "team/app", "", "localhost:5000/team/app", dg},
		{"127.0.0.1:5000/a/b/c:v1@" + dg, "127.0.0.1:5000", "a/b/c", "v1", "127.0.0.1:5000/a/b/c", dg},
		{"[::1]:5000/app:latest", "[::1]:5000", "app", "latest", "[::1]:5000/app", ""},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if r.Raw != tc.in || r.Registry != tc.registry || r.Repository != tc.repository || r.Tag != tc.tag || r.Scope != tc.scope || string(r.Digest) != tc.dg || r.IsLayout() || r.String() != tc.in {
			t.Errorf("Parse(%q) = %+v", tc.in, r)
		}
		if want := tc.dg; want == "" && r.Object() != tc.tag || want != "" && r.Object() != want {
			t.Errorf("Parse(%q).Object() = %q", tc.in, r.Object())
		}
	}
	for in, want := range map[string]string{
		"not a reference":             `is not host[:port]/repository:tag`,
		"registry.example.com/App:v1": `invalid repository "App"`,
		"registry.example.com/app":    `names no tag or digest: append :tag or @sha256:<digest>`,
		"https://example.com/app:v1":  `is not host[:port]/repository:tag`,
		"example.com/app@sha256:abc":  `is not host[:port]/repository:tag`,
	} {
		_, err := Parse(in)
		var re *Error
		if !errors.As(err, &re) || re.Raw != in || re.Layout || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want *Error containing %q", in, err, want)
		}
	}
}

func TestParseLayout(t *testing.T) {
	for _, tc := range []struct{ in, path, tag, dg string }{
		{"/tmp/layout@" + dg, "/tmp/layout", "", dg},
		{"./layout:v1", "./layout", "v1", ""},
		{"/tmp/a:b/layout:v1", "/tmp/a:b/layout", "v1", ""},
		{"/tmp/a:b/layout@" + dg, "/tmp/a:b/layout", "", dg},
	} {
		r, err := ParseLayout(tc.in, "local/app")
		if err != nil || r.Path != tc.path || r.Tag != tc.tag || string(r.Digest) != tc.dg || r.Scope != "local/app" || !r.IsLayout() || r.Registry != "" {
			t.Errorf("ParseLayout(%q) = %+v, %v", tc.in, r, err)
		}
		if got := r.Pinned(digest.Digest(dg)); got != "local/app@"+dg {
			t.Errorf("Pinned = %q", got)
		}
	}
	for in, want := range map[string]string{
		"/tmp/layout":            "names no tag or digest",
		"/tmp/a:b/layout":        "names no tag or digest",
		"/tmp/layout@sha256:abc": `invalid digest "sha256:abc"`,
		"@" + dg:                 "names no layout folder",
		"/tmp/layout:":           "names no tag or digest",
	} {
		_, err := ParseLayout(in, "local/app")
		var re *Error
		if !errors.As(err, &re) || !re.Layout || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseLayout(%q) = %v, want %q", in, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"registry.example.com/app:v1", "localhost:5000/a@" + dg, "a/b:c@" + dg, "::", "@", "x/y:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		if r.Scope != r.Registry+"/"+r.Repository || r.Digest == "" && r.Tag == "" {
			t.Fatalf("Parse(%q) = %+v", s, r)
		}
		if r.Digest != "" && r.Digest.Validate() != nil {
			t.Fatalf("Parse(%q): invalid digest %q accepted", s, r.Digest)
		}
		if l, err := ParseLayout(s, "local/x"); err == nil && l.Path == "" {
			t.Fatalf("ParseLayout(%q): empty path", s)
		}
	})
}
