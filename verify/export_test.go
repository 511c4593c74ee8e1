package verify

// CacheSizes reports how many entries each in-memory cache of v holds, for
// the tests of package verify_test.
func CacheSizes(v *Verifier) map[string]int {
	return map[string]int{
		"envelopes":   v.envelopes.len(),
		"stores":      v.stores.len(),
		"revocations": v.revocations.len(),
		"tokens":      v.tokens.len(),
		"metadata":    v.metadata.len(),
	}
}
