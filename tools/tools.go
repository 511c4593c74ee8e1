//go:build tools

// Package tools pins the command-line tools keyward's tests and benchmarks
// run: notation v1.3.2 (the reference client and verifier), two OCI
// registries (olareg with the referrers API, distribution without it) and
// staticcheck. It is a separate module so that none of these dependencies
// reach keyward's own go.mod; scripts/tools.sh builds them into
// .cache/tools/bin.
package tools

import (
	_ "github.com/distribution/distribution/v3/cmd/registry"
	_ "github.com/notaryproject/notation/cmd/notation"
	_ "github.com/olareg/olareg/cmd/olareg"
	_ "honnef.co/go/tools/cmd/staticcheck"
)
