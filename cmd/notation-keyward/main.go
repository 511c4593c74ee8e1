// Command notation-keyward is keyward's Notary Project plugin: notation runs
// it as `notation-keyward <command>` with a JSON request on standard input.
// See package plugin for the protocol and README.md for installation.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}
