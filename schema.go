// Package keyward holds the files of the repository root that programs
// embed: the trust policy JSON Schema (package policy compiles it and
// `keyward policy schema` prints it), the JSON Schema of `keyward verify
// --output json` lines, the JSON Schema of `keyward scan --output json`
// lines, and the JSON Schema of the keyward serve configuration file.
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

//go:embed verify-result.schema.json
var verifyResultSchema []byte

// VerifyResultSchema returns a copy of verify-result.schema.json, the JSON
// Schema (draft 2020-12) of one line of `keyward verify --output json`.
func VerifyResultSchema() []byte { return bytes.Clone(verifyResultSchema) }

//go:embed serve-config.schema.json
var serveConfigSchema []byte

// ServeConfigSchema returns a copy of serve-config.schema.json, the JSON
// Schema (draft 2020-12) of the keyward serve configuration file.
func ServeConfigSchema() []byte { return bytes.Clone(serveConfigSchema) }

//go:embed scan-result.schema.json
var scanResultSchema []byte

// ScanResultSchema returns a copy of scan-result.schema.json, the JSON
// Schema (draft 2020-12) of one line of `keyward scan --output json`.
func ScanResultSchema() []byte { return bytes.Clone(scanResultSchema) }
