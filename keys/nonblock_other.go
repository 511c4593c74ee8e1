//go:build !unix

package keys

const nonBlock = 0
