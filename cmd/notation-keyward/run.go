package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/keyward/keyward/internal/dirs"
	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/keys"
	"github.com/keyward/keyward/keys/filekey"
	"github.com/keyward/keyward/keys/pkcs11key"
	"github.com/keyward/keyward/plugin"
)

const usage = `notation-keyward: the keyward signing plugin for notation (Notary Project).

notation runs this program; people rarely need to. Install it with
  notation plugin install --file notation-keyward
and sign with a PEM key file or a PKCS#11 token key
  notation sign --plugin keyward --id file:/path/to/key.pem \
      --plugin-config cert_chain=/path/to/chain.pem <reference>
  notation sign --plugin keyward \
      --id 'pkcs11:token=<label>;object=<key>?module-path=<module.so>&pin-source=file:<pin file>' <reference>
(keyward keys list --module <module.so> prints the pkcs11: key ids).

Usage:
  notation-keyward <command>   run a plugin command (contract 1.0), reading the
                               JSON request on standard input
  notation-keyward version     print the version
  notation-keyward help        print this help

Commands: %s

Plugin config keys, key ids and examples: https://github.com/keyward/keyward#readme
`

// run is the whole program; main only exits with its status. Plugin commands
// write the JSON response on stdout and exit 0, or the JSON error on stderr
// and exit 1 (plugin-extensibility.md "Plugin contract").
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (status int) {
	if len(args) != 2 {
		return fail(stderr, &plugin.Error{Code: plugin.CodeValidation,
			Message: fmt.Sprintf("expected exactly one command argument, got %d: run `notation-keyward help`", max(len(args)-1, 0))})
	}
	switch cmd := args[1]; cmd {
	case "version", "--version":
		fmt.Fprintf(stdout, "notation-keyward %s\n", version.String())
		return 0
	case "help", "-h", "--help":
		fmt.Fprintf(stdout, usage, strings.Join(plugin.Commands, ", "))
		return 0
	}

	// From here on, the response channel belongs to the protocol: anything a
	// dependency (a PKCS#11 module written in C, say) prints must not reach
	// notation, so the process's own descriptors 1 and 2 go to /dev/null.
	stdout, stderr, restore := isolate(stdout, stderr)
	defer restore()

	defer func() {
		if r := recover(); r != nil {
			// Never a stack trace or the panic value on the wire: they may
			// hold request data. The message says where to report it.
			status = fail(stderr, plugin.Internal("internal error in notation-keyward %s while running %s; please report it at https://github.com/keyward/keyward/issues", version.Version, args[1]))
		}
	}()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	opener := keys.NewOpener(filekey.Backend{Getenv: getenv}, pkcs11key.Backend{Getenv: getenv})
	// Chains verified by an earlier process are not verified again (see
	// keys.ChainCache); the folder holds no secrets.
	if dir := dirs.CacheDir(getenv); dir != "" {
		opener = opener.WithChainCache(keys.NewChainCache(filepath.Join(dir, "chains")))
	}
	resp, perr := plugin.New(opener).Run(ctx, args[1], stdin)
	if perr != nil {
		return fail(stderr, perr)
	}
	if _, err := stdout.Write(resp); err != nil {
		return 1
	}
	return 0
}

func fail(stderr io.Writer, e *plugin.Error) int {
	_, _ = stderr.Write(e.JSON())
	return 1
}
