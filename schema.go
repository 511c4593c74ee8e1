// Package keyward holds the files of the repository root that programs
// embed. Its only export is the trust policy JSON Schema; package policy
// compiles it and `keyward policy schema` prints it.
package keyward

import (
	"bytes"
	_ "embed"
)

//go:embed trustpolicy.schema.json
var trustPolicySchema []byte

// TrustPolicySchema returns a copy of trustpolicy.schema.json from the
// repository root, the JSON Schema (draft 2020-12) for notation trust policy
// documents. The file is the single source: editors read it from the
// repository and the binaries embed these bytes.
func TrustPolicySchema() []byte { return bytes.Clone(trustPolicySchema) }
