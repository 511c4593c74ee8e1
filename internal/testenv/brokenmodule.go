package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Broken PKCS#11 modules [BrokenPKCS11Module] builds.
const (
	// ModuleGetFunctionListFails: C_GetFunctionList returns
	// CKR_GENERAL_ERROR and sets no list.
	ModuleGetFunctionListFails = "get-function-list-fails"
	// ModuleNullFunctionList: C_GetFunctionList returns CKR_OK and a
	// NULL list.
	ModuleNullFunctionList = "null-function-list"
	// ModuleNoInitialize: the list's entries, C_Initialize first, are
	// all NULL.
	ModuleNoInitialize = "no-initialize"
	// ModuleUnresolvedSymbol: C_GetFunctionList calls a function no
	// library defines, which a lazy dlopen finds only at the call.
	ModuleUnresolvedSymbol = "unresolved-symbol"
)

// brokenModuleSources are the C sources of the broken modules. CK_RV is an
// unsigned long and CK_FUNCTION_LIST a CK_VERSION followed by 68 function
// pointers (PKCS #11 v2.40).
var brokenModuleSources = map[string]string{
	ModuleGetFunctionListFails: `unsigned long C_GetFunctionList(void **list) { return 0x5UL; /* CKR_GENERAL_ERROR */ }`,
	ModuleNullFunctionList:     `unsigned long C_GetFunctionList(void **list) { *list = 0; return 0; }`,
	ModuleNoInitialize: `static struct { unsigned char version[2]; void *fn[68]; } empty = {{2, 40}, {0}};
unsigned long C_GetFunctionList(void **list) { *list = &empty; return 0; }`,
	ModuleUnresolvedSymbol: `extern unsigned long keyward_test_nowhere(void);
unsigned long C_GetFunctionList(void **list) { return keyward_test_nowhere(); }`,
}

// BrokenPKCS11Module compiles, with the C compiler on PATH (cc), a shared
// library of the given kind that pretends to be a PKCS#11 module, and
// returns its path. The test fails when there is no C compiler in CI, and
// is skipped otherwise.
func BrokenPKCS11Module(t testing.TB, kind string) string {
	t.Helper()
	src, ok := brokenModuleSources[kind]
	if !ok {
		t.Fatalf("testenv: no broken module %q", kind)
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		Missing(t, "no C compiler (cc) to build the broken PKCS#11 module %q", kind)
		return ""
	}
	dir := t.TempDir()
	c := filepath.Join(dir, kind+".c")
	if err := os.WriteFile(c, []byte(src+"\n"), 0o644); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	lib := filepath.Join(dir, "lib"+kind+".so")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, c).CombinedOutput(); err != nil {
		t.Fatalf("testenv: build the broken PKCS#11 module %q: %v\n%s", kind, err, out)
	}
	return lib
}
