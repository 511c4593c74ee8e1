//go:build tools

// Package helm pins the helm CLI that keyward's deployment tests run
// (helm lint and helm template of deploy/helm/keyward). It is a module of its
// own because helm brings k8s.io modules far newer than the v0.31.0 keyward's
// own go.mod pins; scripts/tools-helm.sh builds it into .cache/tools/bin.
package helm

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
