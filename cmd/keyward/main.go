// Command keyward is the trust-policy engine and CLI of the keyward project:
// it validates, lints and explains notation trust policies, lists PKCS#11
// keys, and verifies signed artifacts. Run `keyward help` for the commands.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
