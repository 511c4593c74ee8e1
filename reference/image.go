package reference

import (
	"fmt"
	"regexp"
	"strings"
)

// Docker Hub's names, as the container runtimes expand short image names
// (github.com/distribution/reference normalize.go, which the kubelet and
// containerd's CRI plugin use): a name whose first component is not a host
// lives on docker.io, an official image under library/, and a name with
// neither tag nor digest means :latest.
const (
	dockerHub       = "docker.io"
	legacyDockerHub = "index.docker.io"
	officialPrefix  = "library/"
	defaultTag      = "latest"
)

// imageID is a bare 64-hex image ID, which the runtimes refuse as a name
// ("cannot specify 64-byte hexadecimal strings").
var imageID = regexp.MustCompile(`^[a-f0-9]{64}$`)

// ParseImage parses an image as a Kubernetes container spec names it
// (nginx, user/app:1, host:5000/team/app@sha256:...) into the full
// reference the kubelet pulls, which is the reference keyward verifies and
// trust policy scopes name: the registry is docker.io unless the first
// path component is a host (it has a '.' or a ':', is localhost, or has an
// upper-case letter), Docker Hub's official images are under library/, and
// an image with neither tag nor digest is :latest. A tag with a digest is
// kept beside it; the digest decides. Raw of the result is the full
// reference. The repository must be lower case, as the runtimes require,
// and so must the host: the runtimes accept Registry.Example.com, which
// reaches registry.example.com, but would select another trust policy
// statement than registry.example.com's; for that reason a host with
// HTTPS's default port (registry.example.com:443) is refused too.
func ParseImage(image string) (Reference, error) {
	bad := func(msg string, err error) (Reference, error) {
		return Reference{}, &Error{Raw: image, Msg: fmt.Sprintf("image %q %s", image, msg), Err: err}
	}
	if image == "" {
		return bad("is empty: give an image such as nginx:1.27 or registry.example.com/team/app@sha256:<digest>", nil)
	}
	if imageID.MatchString(image) {
		return bad("is a bare image ID: name the image by repository, e.g. registry.example.com/app@sha256:<id>", nil)
	}
	name, dgst, hasDigest := strings.Cut(image, "@")
	tag, hasTag := "", false
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name, tag, hasTag = name[:i], name[i+1:], true
	}
	host, path := dockerHub, name
	if first, rest, ok := strings.Cut(name, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		host, path = first, rest
	}
	if strings.ToLower(host) != host {
		// The registry does not tell the cases of a host apart (DNS, TLS
		// names), the trust policy does (its registryScopes match
		// exactly): Registry.Example.com/app would pull the image of
		// registry.example.com/app under another statement, the "*" one.
		return bad(fmt.Sprintf("has an upper-case registry host %q: write the host in lower case, as trust policy registry scopes name it", host), nil)
	}
	if strings.HasSuffix(host, ":443") {
		// The same registry as the host without the port (HTTPS's), but
		// another trust policy scope: refused for the reason above.
		return bad(fmt.Sprintf("names the registry %q with HTTPS's default port: write it without :443, as trust policy registry scopes name it", host), nil)
	}
	if host == legacyDockerHub {
		host = dockerHub
	}
	if host == dockerHub && !strings.Contains(path, "/") {
		path = officialPrefix + path
	}
	if strings.ToLower(path) != path {
		return bad(fmt.Sprintf("has an upper-case repository %q: container runtimes accept lower-case repositories only", path), nil)
	}
	full := host + "/" + path
	switch {
	case hasTag:
		full += ":" + tag
	case !hasDigest:
		full += ":" + defaultTag
	}
	if hasDigest {
		full += "@" + dgst
	}
	r, err := Parse(full)
	if err != nil {
		return bad(fmt.Sprintf("is not a valid image reference (read as %s)", full), err)
	}
	return r, nil
}
