//go:build !cgo

package main

// moduleTests: without cgo, keys list says it cannot load modules.
func moduleTests(notLib string) []cliTest {
	return []cliTest{
		{"built without cgo", nil, []string{"keys", "list", "--module", notLib}, exitFailure, []string{"built without cgo", "CGO_ENABLED=1"}},
	}
}
