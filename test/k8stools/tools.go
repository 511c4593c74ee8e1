//go:build tools

// Package k8stools pins the Kubernetes control plane that keyward's
// admission-webhook tests run against: kube-apiserver v1.31.0 (matching the
// k8s.io/client-go v0.31.0 of the main module) and etcd v3.5.15. It is a
// module of its own so that its 30 replace lines and large dependency graph
// never reach the main module; scripts/tools-k8s.sh builds the two binaries.
package k8stools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
