package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/interrupt"
	"github.com/keyward/keyward/internal/version"
)

// Exit statuses shared by every subcommand.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and found a problem (invalid policy, failed verification)
	exitUsage   = 2 // the command line was wrong
	// A command stopped by SIGINT or SIGTERM exits 128 + the signal's
	// number (interrupt.Status): 130 or 143.
)

// env is what a command may touch of the process: its streams and
// environment. Commands never read os.* directly, so tests run them in-process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// exitError carries an exit status through cobra; its message, if any, has
// already been printed.
type exitError struct{ status int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.status) }

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// run is the whole program; main only exits with its status.
//
// SIGINT or SIGTERM cancels the command's context; a command that has not
// returned 2 s later (interrupt.DefaultGrace), or a second signal, ends the
// process at once. Either way the status is 130 for SIGINT and 143 for
// SIGTERM, as shells report a process the signal killed.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	grace := interrupt.DefaultGrace
	if len(args) > 0 && args[0] == "serve" {
		// A server drains the requests in flight before it stops.
		grace = serveGrace
	}
	sigs := interrupt.Notify(context.Background(), grace, func(sig os.Signal) {
		fmt.Fprintf(stderr, "Error: %s\n", interruptedMessage(sig, false))
		os.Exit(interrupt.Status(sig))
	})
	defer sigs.Stop()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	root := newRootCommand(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(sigs.Context())
	if sig := sigs.Signal(); sig != nil && err == nil && len(args) > 0 && args[0] == "serve" {
		// SIGTERM is how a server is asked to stop (Kubernetes sends it
		// before every pod deletion): a server that drained its requests
		// and returned has done what it was asked.
		fmt.Fprintf(stderr, "keyward serve: stopped on %s after answering the requests in flight\n", interrupt.Name(sig))
		return exitOK
	}
	if sig := sigs.Signal(); sig != nil {
		fmt.Fprintf(stderr, "Error: %s\n", interruptedMessage(sig, true))
		return interrupt.Status(sig)
	}
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.status
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsageError(err) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", commandPath(root, args))
		return exitUsage
	}
	return exitFailure
}

// interruptedMessage says that a signal stopped the command, and whether the
// command stopped by itself or was cut off.
func interruptedMessage(sig os.Signal, returned bool) string {
	if returned {
		return fmt.Sprintf("interrupted by %s; the command stopped before it finished (exit status %d)", interrupt.Name(sig), interrupt.Status(sig))
	}
	return fmt.Sprintf("interrupted by %s; the command did not stop within %v and was ended (exit status %d)", interrupt.Name(sig), interrupt.DefaultGrace, interrupt.Status(sig))
}

func newRootCommand(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "keyward",
		Short: "Trust-policy engine for notation signatures",
		Long: `keyward validates, lints and explains notation (Notary Project) trust
policies and verifies signed artifacts against them.

Its companion, the notation-keyward plugin, signs with keys kept outside
notation: PEM files and PKCS#11 tokens.

Every command stops on SIGINT or SIGTERM: at once if it can, else 2 s
later, or at a second signal. It then exits with status 130 (SIGINT) or
143 (SIGTERM). keyward serve stops once the requests in flight are
answered (at most 40 s) and then exits 0; 130 or 143 only when it had to
be cut off.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.String(),
	}
	root.SetVersionTemplate("keyward {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(
		newVersionCommand(e),
		newKeysCommand(e),
		newPolicyCommand(e),
		newVerifyCommand(e),
		newServeCommand(e),
		newScanCommand(e),
	)
	return root
}

func newVersionCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(e.stdout, "keyward %s\n", version.String())
			return nil
		},
	}
}

// isCobraUsageError reports errors cobra raises for unknown commands and bad
// argument counts, which are usage errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at", "invalid argument", "flag needs an argument"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func commandPath(root *cobra.Command, args []string) string {
	if c, _, err := root.Find(args); err == nil && c != nil {
		return c.CommandPath()
	}
	return root.Name()
}
