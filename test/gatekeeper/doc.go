// Package gatekeeper holds the test that keyward serve's Gatekeeper
// external-data provider speaks the upstream types: Gatekeeper's own
// github.com/open-policy-agent/frameworks/constraint/pkg/externaldata, at
// the version Ratify v1.4.0 builds with. It is a module of its own so that
// the frameworks module (and the OPA and Kubernetes versions it asks for)
// never reach keyward's go.mod.
package gatekeeper
