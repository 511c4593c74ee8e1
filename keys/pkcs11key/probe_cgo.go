//go:build cgo

package pkcs11key

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// The head of CK_FUNCTION_LIST (PKCS #11 v2.40 section 5.16; the order of
// pkcs11f.h): a CK_VERSION, then function pointers from C_Initialize on.
// Only the entries up to C_Sign are declared: a real list is longer, and
// the probe reads no further.
enum { kw_fn_count = 44 };
typedef struct { unsigned char major, minor; } kw_version;
typedef struct { kw_version version; void *fn[kw_fn_count]; } kw_function_list;
typedef unsigned long (*kw_get_function_list)(kw_function_list **);

enum {
	kw_ok = 0,
	kw_dlopen_failed,
	kw_no_symbol,
	kw_call_failed,
	kw_null_list,
	kw_missing_function,
};

// kw_probe dlopens path with every symbol bound now (a module with an
// unresolved symbol would otherwise end the process with "symbol lookup
// error" at its first call) and checks its function list. *handle is the
// library's handle when the probe succeeded, for kw_release.
static int kw_probe(const char *path, const int *needed, int nneeded, void **handle, unsigned long *rv, int *missing, char *dlerr, size_t dlerrlen) {
	*handle = NULL;
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *e = dlerror();
		if (e != NULL && dlerrlen > 0) {
			size_t i = 0;
			for (; e[i] != 0 && i + 1 < dlerrlen; i++) dlerr[i] = e[i];
			dlerr[i] = 0;
		}
		return kw_dlopen_failed;
	}
	kw_get_function_list get = (kw_get_function_list) dlsym(h, "C_GetFunctionList");
	if (get == NULL) {
		dlclose(h);
		return kw_no_symbol;
	}
	kw_function_list *list = NULL;
	*rv = get(&list);
	if (*rv != 0) {
		dlclose(h);
		return kw_call_failed;
	}
	if (list == NULL) {
		dlclose(h);
		return kw_null_list;
	}
	for (int i = 0; i < nneeded; i++) {
		int k = needed[i];
		if (k < 0 || k >= kw_fn_count || list->fn[k] == NULL) {
			*missing = k;
			dlclose(h);
			return kw_missing_function;
		}
	}
	*handle = h;
	return kw_ok;
}

static void kw_release(void *h) {
	if (h != NULL) dlclose(h);
}
*/
import "C"

import (
	"strings"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// neededFunctions are the CK_FUNCTION_LIST entries keyward calls, by their
// index in the list (pkcs11f.h order). miekg/pkcs11 calls through the list
// without checking, so a NULL entry would crash the process.
var neededFunctions = []struct {
	index int
	name  string
}{
	{0, "C_Initialize"}, {1, "C_Finalize"}, {2, "C_GetInfo"}, {4, "C_GetSlotList"}, {6, "C_GetTokenInfo"},
	{12, "C_OpenSession"}, {13, "C_CloseSession"}, {18, "C_Login"}, {24, "C_GetAttributeValue"},
	{26, "C_FindObjectsInit"}, {27, "C_FindObjects"}, {28, "C_FindObjectsFinal"}, {42, "C_SignInit"}, {43, "C_Sign"},
}

// probeModule loads the library and checks, before miekg/pkcs11 uses it,
// what that binding does not: that C_GetFunctionList succeeds and returns
// a list holding every function keyward calls. miekg/pkcs11's New ignores
// C_GetFunctionList's result, and its Initialize then calls through a NULL
// list: a segmentation fault, exit status 2 and no answer for notation.
//
// On success the returned func releases the probe's reference to the
// library; call it once pkcs11.New holds its own, so that the library is
// not unloaded and loaded again in between.
//
// What the probe cannot catch is listed in SECURITY.md: the library's
// constructors and C_GetFunctionList run in this process, so a module that
// crashes there, or returns a list of wild pointers, still ends it.
func probeModule(m moduleChoice) (release func(), err error) {
	path := C.CString(m.path)
	defer C.free(unsafe.Pointer(path))
	needed := make([]C.int, len(neededFunctions))
	for i, f := range neededFunctions {
		needed[i] = C.int(f.index)
	}
	var (
		handle  unsafe.Pointer
		rv      C.ulong
		missing C.int
		dlerr   [512]C.char
	)
	switch C.kw_probe(path, &needed[0], C.int(len(needed)), &handle, &rv, &missing, &dlerr[0], C.size_t(len(dlerr))) {
	case C.kw_ok:
		return func() { C.kw_release(handle) }, nil
	case C.kw_dlopen_failed:
		detail := strings.TrimSpace(C.GoString(&dlerr[0]))
		if detail != "" {
			detail = " (" + detail + ")"
		}
		return nil, invalidf("PKCS#11 module %q (%s) could not be loaded%s: it is not a shared library of this platform (%s), or a library or symbol it needs is missing; check it with `ldd %s`",
			m.path, m.source, detail, multiarch(), m.path)
	case C.kw_no_symbol:
		return nil, invalidf("PKCS#11 module %q (%s) could not be loaded: it has no C_GetFunctionList, so it is not a PKCS#11 module; give the path of the token's PKCS#11 library", m.path, m.source)
	case C.kw_call_failed:
		return nil, invalidf("PKCS#11 module %q (%s) is broken: its C_GetFunctionList failed with %s, so keyward cannot call it; reinstall the module or ask its vendor",
			m.path, m.source, ckrName(pkcs11.Error(rv)))
	case C.kw_null_list:
		return nil, invalidf("PKCS#11 module %q (%s) is broken: its C_GetFunctionList returned CKR_OK but no function list, so keyward cannot call it; reinstall the module or ask its vendor", m.path, m.source)
	default:
		name := "an entry"
		for _, f := range neededFunctions {
			if C.int(f.index) == missing {
				name = f.name
			}
		}
		return nil, invalidf("PKCS#11 module %q (%s) is broken: its function list has no %s, which keyward calls; reinstall the module or ask its vendor", m.path, m.source, name)
	}
}
