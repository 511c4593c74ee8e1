package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/keyward/keyward/internal/dirs"
	"github.com/keyward/keyward/internal/interrupt"
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

A command answers with JSON on standard output and exit status 0, or with a
JSON error on standard error and exit status 1. SIGINT or SIGTERM stops it
within 2 s with the error {"errorCode":"ERROR",...} and exit status 1.

Plugin config keys, key ids and examples: https://github.com/keyward/keyward#readme
`

// run is the whole program; main only exits with its status. Plugin commands
// write the JSON response on stdout and exit 0, or the JSON error on stderr
// and exit 1 (plugin-extensibility.md "Plugin contract").
//
// SIGINT or SIGTERM (notation's own interruption, a supervisor's stop)
// cancels the command's context. A command that has not returned 2 s later
// (interrupt.DefaultGrace), or a second signal, ends the process at once:
// blocked reading a standard input that never closes, say, or inside a
// PKCS#11 module. Either way notation gets the protocol's answer to a
// failure: the JSON error, code ERROR, on stderr and exit status 1.
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

	// answer is held by whoever writes the final answer, the response or
	// an error, and never released: the signal handler's exit and the
	// command's own return cannot both answer.
	var answer sync.Mutex
	sigs := interrupt.Notify(context.Background(), interrupt.DefaultGrace, func(sig os.Signal) {
		answer.Lock()
		fail(stderr, interrupted(sig, args[1], false))
		os.Exit(1)
	})
	defer sigs.Stop()
	ctx := sigs.Context()

	opener := keys.NewOpener(filekey.Backend{Getenv: getenv}, pkcs11key.Backend{Getenv: getenv})
	// Chains verified by an earlier process are not verified again (see
	// keys.ChainCache); the folder holds no secrets.
	if dir := dirs.CacheDir(getenv); dir != "" {
		opener = opener.WithChainCache(keys.NewChainCache(filepath.Join(dir, "chains")))
	}
	resp, perr := plugin.New(opener).Run(ctx, args[1], stdin)
	answer.Lock()
	if sig := sigs.Signal(); sig != nil {
		return fail(stderr, interrupted(sig, args[1], true))
	}
	if perr != nil {
		return fail(stderr, perr)
	}
	if _, err := stdout.Write(resp); err != nil {
		return 1
	}
	return 0
}

// interrupted is the error answering a command a signal stopped; returned
// says whether the command stopped by itself or was cut off.
func interrupted(sig os.Signal, command string, returned bool) *plugin.Error {
	how := "stopped before it finished"
	if !returned {
		how = fmt.Sprintf("did not stop within %v and was ended", interrupt.DefaultGrace)
	}
	return plugin.Internal("notation-keyward was interrupted by %s: %s %s", interrupt.Name(sig), command, how)
}

func fail(stderr io.Writer, e *plugin.Error) int {
	_, _ = stderr.Write(e.JSON())
	return 1
}
