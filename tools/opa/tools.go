//go:build tools

// Package opa pins the OPA CLI that keyward's deployment tests run to
// evaluate the Gatekeeper ConstraintTemplate's Rego
// (deploy/helm/keyward/files/keywardverification.rego) on admission
// requests. It is a module of its own, like tools/helm; scripts/tools-opa.sh
// builds it into .cache/tools/bin.
package opa

import (
	_ "github.com/open-policy-agent/opa"
)
