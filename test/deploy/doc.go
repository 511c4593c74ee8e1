// Package deploy holds the tests of keyward's deployment files: the plain
// Kubernetes manifests in deploy/manifests, the Gatekeeper variant in
// deploy/gatekeeper and the Helm chart in deploy/helm/keyward.
package deploy
