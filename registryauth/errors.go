package registryauth

import (
	"fmt"
	"strings"
	"time"
)

// HelperErrorKind names why a credential helper gave no credential.
type HelperErrorKind string

const (
	// HelperNotFound: docker-credential-<name> is not on PATH.
	HelperNotFound HelperErrorKind = "not-found"
	// HelperTimeout: the helper did not finish within the timeout.
	HelperTimeout HelperErrorKind = "timeout"
	// HelperOutputTooLarge: the helper printed more than the bound.
	HelperOutputTooLarge HelperErrorKind = "output-too-large"
	// HelperBadOutput: the helper printed something that is not the JSON
	// credential object.
	HelperBadOutput HelperErrorKind = "bad-output"
	// HelperFailed: the helper exited with a non-zero status for another
	// reason than a missing credential.
	HelperFailed HelperErrorKind = "failed"
)

// HelperError is a credential helper that failed. Its message never holds
// what the helper printed: that may be a secret.
type HelperError struct {
	Kind    HelperErrorKind
	Program string // docker-credential-<name>
	Host    string // the registry asked about
	Source  string // where the helper is configured: "credHelpers" or "credsStore" of the config file
	Timeout time.Duration
	Limit   int64
	Err     error // the exec error, when there is one
}

func (e *HelperError) Error() string {
	prefix := fmt.Sprintf("credential helper %s (%s) for registry %s", e.Program, e.Source, e.Host)
	switch e.Kind {
	case HelperNotFound:
		return fmt.Sprintf("%s: %s is not on PATH: install it, or remove the entry from the docker config file", prefix, e.Program)
	case HelperTimeout:
		return fmt.Sprintf("%s: did not answer within %s and was stopped: check that it runs without waiting for input (run `echo %s | %s get`)", prefix, e.Timeout, e.Host, e.Program)
	case HelperOutputTooLarge:
		return fmt.Sprintf("%s: printed more than %d bytes, more than a credential: check the helper", prefix, e.Limit)
	case HelperBadOutput:
		return fmt.Sprintf("%s: printed something that is not a JSON credential object {\"ServerURL\", \"Username\", \"Secret\"}: check the helper (run `echo %s | %s get`)", prefix, e.Host, e.Program)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: failed: %v", prefix, e.Err)
	}
	return prefix + ": failed"
}

func (e *HelperError) Unwrap() error { return e.Err }

// ConfigError is a docker config file that cannot be used. Its message
// names the file and the field, never a credential.
type ConfigError struct {
	Path  string
	Field string // e.g. auths["host"].auth; empty for the whole file
	Msg   string
	Err   error
}

func (e *ConfigError) Error() string {
	where := "docker config " + e.Path
	if e.Field != "" {
		where += ": " + e.Field
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", where, e.Msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", where, e.Msg)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// AmbiguousCredentialError refuses a password given for one registry
// (--username/--password-stdin, or notation's environment variables) when
// the references name several registries: it would be sent to each.
type AmbiguousCredentialError struct {
	// Source names where the password came from.
	Source string
	// Hosts are the registries the references name.
	Hosts []string
}

func (e *AmbiguousCredentialError) Error() string {
	return fmt.Sprintf("%s give the password of one registry, but the references name %d registries (%s): it would be sent to each of them; verify one registry's references per run, or keep the credentials in the docker config file or a credential helper (docker login), which gives each registry its own",
		e.Source, len(e.Hosts), strings.Join(e.Hosts, ", "))
}
