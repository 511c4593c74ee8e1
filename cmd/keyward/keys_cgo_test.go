//go:build cgo

package main

// moduleTests are the keys list cases that load (or fail to load) a module.
func moduleTests(notLib string) []cliTest {
	return []cliTest{
		{"missing module", nil, []string{"keys", "list", "--module", "/nonexistent/libx.so"}, exitFailure, []string{`"/nonexistent/libx.so"`, "does not exist"}},
		{"module from environment", map[string]string{"KEYWARD_PKCS11_MODULE": "/nonexistent/liby.so"}, []string{"keys", "list"}, exitFailure, []string{`"/nonexistent/liby.so"`}},
		{"not a library", nil, []string{"keys", "list", "--module", notLib}, exitFailure, []string{"could not be loaded"}},
	}
}
