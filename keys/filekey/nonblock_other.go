//go:build !unix

package filekey

const nonBlock = 0
