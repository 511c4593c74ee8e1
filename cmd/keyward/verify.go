package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/auth"

	keyward "github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/internal/crlbundle"
	"github.com/keyward/keyward/internal/dirs"
	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/registryauth"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

func verifyResultSchema() []byte { return keyward.VerifyResultSchema() }

// verifyFlags are the flags of keyward verify.
type verifyFlags struct {
	policyFile       string
	trustStore       string
	ociLayout        bool
	scope            string
	plainHTTP        bool
	insecure         []string
	caFile           string
	username         string
	passwordStdin    bool
	maxSignatures    int
	metadata         []string
	pluginConfig     []string
	ocspTimeout      time.Duration
	crlTimeout       time.Duration
	crlBundle        string
	requestTimeout   time.Duration
	concurrency      int
	fromFile         string
	output           string
	verbose          bool
	metadataMap      map[string]string
	pluginConfigMap  map[string]string
	insecureRegistry map[string]bool
}

func newVerifyCommand(e *env) *cobra.Command {
	var f verifyFlags
	c := &cobra.Command{
		Use:   "verify [flags] REFERENCE...",
		Short: "Verify the notation signatures of artifacts against a trust policy",
		Long: `Verify the Notary Project signatures of artifacts in registries or OCI image
layouts, as notation verify v1.3.2 does and with the same verdicts: the trust
policy statement that applies to each artifact decides which checks are
enforced, logged or skipped, and an artifact passes when one of its
signatures passes.

A REFERENCE is host[:port]/repository@sha256:<digest> or :tag (a tag is
resolved to a digest, which is reported), or with --oci-layout a
<path>@sha256:<digest> or <path>:tag, selected in the policy by --scope.
Many references are verified concurrently; results are printed as each
completes: one line a reference in text (-v for every check), or one JSON
object a line with --output json (JSON Lines, each line valid against
verify-result.schema.json; keyward verify --print-schema prints it).

By default the trust policy and trust store are notation's own:
{NOTATION_CONFIG}/trustpolicy.json and {NOTATION_CONFIG}/truststore, with
{NOTATION_CONFIG} = $NOTATION_CONFIG, else $XDG_CONFIG_HOME/notation or
~/.config/notation. Registry credentials come, in this order, from
--username and --password-stdin; from $NOTATION_USERNAME and
$NOTATION_PASSWORD, as in notation (a password alone is an identity token);
from the docker config notation uses ($DOCKER_CONFIG/config.json, else
~/.docker/config.json): the registry's credHelpers entry, else credsStore,
else its auths entry (auth, identitytoken). Bearer tokens are asked once
per repository and renewed when they expire; -v reports the requests and
token requests made to each registry (with --output json, as a last line).

For air-gapped verification, --crl-bundle FILE judges revocation (of the
signing and timestamping chains, signatures naming keyward as their plugin
included) from the CRLs in FILE alone: no OCSP request, no CRL download. A
certificate whose issuer signed no CRL in FILE but that names revocation
servers has an unknown status, which fails revocation as an unreachable
responder does.

Exit status: 0 when every reference verified, 1 when any did not, 2 for a
usage error.`,
		Example: `  keyward verify registry.example.com/app@sha256:...
  keyward verify --plain-http --output json 127.0.0.1:5000/app:v1
  keyward verify --from-file refs.txt --concurrency 32
  keyward verify --oci-layout --scope local/app ./layout@sha256:...`,
		RunE: func(c *cobra.Command, args []string) error {
			if ps, _ := c.Flags().GetBool("print-schema"); ps {
				_, err := e.stdout.Write(verifyResultSchema())
				return err
			}
			return runVerify(c.Context(), e, &f, args)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.policyFile, "policy", "", "trust policy file (default: notation's {NOTATION_CONFIG}/trustpolicy.json)")
	fl.StringVar(&f.trustStore, "trust-store", "", "folder holding x509/{ca,signingAuthority,tsa}/<name>/ (default: notation's {NOTATION_CONFIG}/truststore)")
	fl.BoolVar(&f.ociLayout, "oci-layout", false, "references are OCI image layouts on disk: <path>@<digest> or <path>:<tag>")
	fl.StringVar(&f.scope, "scope", "", "with --oci-layout: the registry scope that selects the trust policy statement")
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "reach every registry over plain HTTP (localhost is always plain HTTP, as in notation)")
	fl.StringArrayVar(&f.insecure, "insecure-registry", nil, "reach this registry host[:port] over plain HTTP (repeatable; notation's flag)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of CA certificates that registry TLS certificates may chain to, besides the system's")
	fl.StringVarP(&f.username, "username", "u", "", "registry user name (with --password-stdin), for the registries of the references")
	fl.BoolVar(&f.passwordStdin, "password-stdin", false, "read the registry password or token from standard input")
	fl.IntVar(&f.maxSignatures, "max-signatures", verify.DefaultMaxSignatures, "most signatures evaluated per artifact")
	fl.StringArrayVarP(&f.metadata, "metadata", "m", nil, "key=value that the signature payload must carry (repeatable)")
	fl.StringArrayVar(&f.pluginConfig, "plugin-config", nil, "key=value passed to verification plugins (repeatable)")
	fl.DurationVar(&f.ocspTimeout, "ocsp-timeout", verify.DefaultOCSPTimeout, "timeout of each OCSP request")
	fl.DurationVar(&f.crlTimeout, "crl-timeout", verify.DefaultCRLTimeout, "timeout of each CRL download")
	fl.StringVar(&f.crlBundle, "crl-bundle", "", "offline CRL bundle (PEM \"X509 CRL\" blocks or one DER CRL): judge revocation from its CRLs only, with no OCSP request or CRL download")
	fl.DurationVar(&f.requestTimeout, "request-timeout", oci.DefaultRequestTimeout, "time one registry request may take, its whole answer included")
	fl.IntVar(&f.concurrency, "concurrency", 16, "references verified at once")
	fl.StringVar(&f.fromFile, "from-file", "", "read references from this file, one a line ('-' for standard input; # starts a comment)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json (JSON Lines)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print every check of every signature evaluated (text), and the requests and token requests made to each registry (text; a last line with --output json)")
	fl.Bool("print-schema", false, "print the JSON Schema of --output json lines and exit")
	return c
}

// parseKeyValues parses repeated key=value flags; the last value of a key
// wins, as in notation.
func parseKeyValues(flag string, pairs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || v == "" {
			return nil, usageErrorf("--%s %q: want key=value with a non-empty key and value", flag, p)
		}
		m[k] = v
	}
	return m, nil
}

func (f *verifyFlags) check(refs []string) error {
	if f.output != "text" && f.output != "json" {
		return usageErrorf("--output %q is not supported: use text or json", f.output)
	}
	if f.maxSignatures <= 0 {
		return usageErrorf("--max-signatures %d: it must be greater than 0", f.maxSignatures)
	}
	if f.requestTimeout <= 0 {
		return usageErrorf("--request-timeout %s: it must be greater than 0", f.requestTimeout)
	}
	if f.concurrency <= 0 {
		return usageErrorf("--concurrency %d: it must be greater than 0", f.concurrency)
	}
	if f.ociLayout && f.scope == "" {
		return usageErrorf("--oci-layout needs --scope, the registry scope that selects the trust policy statement (e.g. --scope local/app)")
	}
	if !f.ociLayout && f.scope != "" {
		return usageErrorf("--scope applies only with --oci-layout")
	}
	if f.scope != "" {
		if err := policy.CheckRegistryScope(f.scope); err != nil {
			return usageErrorf("--scope %q: %v", f.scope, err)
		}
	}
	if f.passwordStdin != (f.username != "") {
		return usageErrorf("--username and --password-stdin go together: the password is read from standard input, never from the command line")
	}
	if f.passwordStdin && f.fromFile == "-" {
		return usageErrorf("--password-stdin and --from-file - both read standard input: give the references in a file")
	}
	if f.ociLayout && (f.username != "" || f.plainHTTP || len(f.insecure) > 0 || f.caFile != "") {
		return usageErrorf("registry flags (--username, --plain-http, --insecure-registry, --ca-file) do not apply with --oci-layout")
	}
	if len(refs) == 0 {
		return usageErrorf("no reference to verify: give REFERENCE arguments or --from-file")
	}
	if f.crlBundle != "" {
		if err := checkCRLBundle(f.crlBundle); err != nil {
			return err
		}
	}
	var err error
	if f.metadataMap, err = parseKeyValues("metadata", f.metadata); err != nil {
		return err
	}
	if f.pluginConfigMap, err = parseKeyValues("plugin-config", f.pluginConfig); err != nil {
		return err
	}
	f.insecureRegistry = map[string]bool{}
	for _, h := range f.insecure {
		f.insecureRegistry[h] = true
	}
	return nil
}

// checkCRLBundle refuses a --crl-bundle that is not a regular file before
// any reference is read; its content is read once, by verify.NewVerifier.
func checkCRLBundle(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return usageErrorf("--crl-bundle %s: no such file: give a file of PEM \"X509 CRL\" blocks or one DER CRL", path)
	case err != nil:
		return usageErrorf("--crl-bundle: %v", err)
	case !fi.Mode().IsRegular():
		return usageErrorf("--crl-bundle %s is not a regular file: give a file of PEM \"X509 CRL\" blocks or one DER CRL", path)
	case fi.Size() > crlbundle.MaxSize:
		return usageErrorf("--crl-bundle %s is %d bytes, more than the %d allowed", path, fi.Size(), int64(crlbundle.MaxSize))
	}
	return nil
}

// Bounds on what keyward verify reads from the command line's files.
const (
	// maxReferencesFile bounds --from-file.
	maxReferencesFile = 16 << 20
	// maxPassword bounds the password read by --password-stdin; registry
	// tokens (ACR refresh tokens, ECR passwords) are a few KiB.
	maxPassword = 64 << 10
)

// readReferences returns the references of --from-file, one a line; blank
// lines and lines starting with # are skipped.
func readReferences(e *env, path string) ([]string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = bounded.ReadAll(e.stdin, maxReferencesFile, "standard input")
	} else {
		// A pipe is welcome here (--from-file <(list-images)): the user
		// names this file, so it is opened as it is, and read bounded.
		var file *os.File
		if file, err = os.Open(path); err == nil {
			defer file.Close()
			data, err = bounded.ReadAll(file, maxReferencesFile, path)
		}
	}
	var tooLarge *bounded.TooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return nil, usageErrorf("--from-file %s is larger than %d bytes: split the references over several runs", path, maxReferencesFile)
	case err != nil:
		return nil, usageErrorf("--from-file: %v", err)
	}
	var refs []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		refs = append(refs, line)
	}
	if err := sc.Err(); err != nil {
		return nil, usageErrorf("--from-file %s: %v", path, err)
	}
	return refs, nil
}

func runVerify(ctx context.Context, e *env, f *verifyFlags, args []string) error {
	refs := append([]string(nil), args...)
	if f.fromFile != "" {
		more, err := readReferences(e, f.fromFile)
		if err != nil {
			return err
		}
		refs = append(refs, more...)
	}
	if err := f.check(refs); err != nil {
		return err
	}

	batch, err := f.batch(e, nil)
	if err != nil {
		return err
	}
	src, err := f.source(e, referenceHosts(refs))
	if err != nil {
		return err
	}
	batch.Source = src
	out := &resultWriter{e: e, json: f.output == "json", verbose: f.verbose}
	failed := batch.VerifyAll(ctx, refs, f.parser(), f.concurrency, out.write)
	if remote, ok := src.(*oci.Remote); ok && f.verbose {
		out.writeStats(remote.Stats())
	}
	if failed > 0 {
		if !out.json {
			fmt.Fprintf(e.stderr, "%d of %d reference%s did not verify\n", failed, len(refs), plural(len(refs)))
		}
		return &exitError{status: exitFailure}
	}
	return nil
}

// batch loads the trust policy and trust store (notation's by default) and
// returns the verification of keyward verify over src; keyward scan uses it
// too, so that both give the same verdicts.
func (f *verifyFlags) batch(e *env, src oci.Source) (*verify.Batch, error) {
	policyFile := f.policyFile
	if policyFile == "" {
		policyFile = dirs.PolicyFile(runtime.GOOS, e.getenv)
	}
	doc, err := policy.LoadFile(policyFile, policy.TypeOCI)
	if err != nil {
		var ve *policy.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintf(e.stderr, "%s: invalid OCI trust policy, %d problem%s:\n", policyFile, len(ve.Problems), plural(len(ve.Problems)))
			for _, p := range ve.Problems {
				writeProblem(e.stderr, "  ", p)
			}
			return nil, &exitError{status: exitFailure}
		}
		return nil, err
	}
	storeDir := f.trustStore
	if storeDir == "" {
		storeDir = dirs.TrustStoreDir(runtime.GOOS, e.getenv)
	}
	opts := verify.Options{
		TrustStore:  truststore.New(storeDir),
		PluginDir:   pluginDir(e),
		OCSPTimeout: f.ocspTimeout,
		CRLTimeout:  f.crlTimeout,
		CRLBundle:   f.crlBundle,
	}
	if dir := dirs.CacheDir(e.getenv); dir != "" {
		// A missing cache only costs downloads.
		if c, err := verify.NewFileCache(filepath.Join(dir, "crl")); err == nil {
			opts.CRLCache = c
		}
	}
	verifier, err := verify.NewVerifier(opts)
	if err != nil {
		var be *crlbundle.Error
		if errors.As(err, &be) {
			return nil, usageErrorf("--crl-bundle %s: %s", be.Path, be.Detail())
		}
		return nil, err
	}
	return &verify.Batch{
		Policy:        doc,
		Verifier:      verifier,
		Source:        src,
		MaxSignatures: f.maxSignatures,
		PluginConfig:  f.pluginConfigMap,
		UserMetadata:  f.metadataMap,
	}, nil
}

// referenceHosts returns the registries of the references that parse.
func referenceHosts(refs []string) []string {
	var hosts []string
	for _, r := range refs {
		if ref, err := reference.Parse(r); err == nil {
			hosts = append(hosts, ref.Registry)
		}
	}
	return hosts
}

// parser returns how the references are read: registry references, or
// with --oci-layout layout references selected by --scope.
func (f *verifyFlags) parser() verify.Parser {
	if f.ociLayout {
		return func(s string) (reference.Reference, error) { return reference.ParseLayout(s, f.scope) }
	}
	return reference.Parse
}

// pluginDir is notation's plugin folder: {NOTATION_LIBEXEC}/plugins, with
// NOTATION_LIBEXEC defaulting to notation's configuration folder.
func pluginDir(e *env) string {
	libexec := e.getenv("NOTATION_LIBEXEC")
	if libexec == "" {
		libexec = dirs.ConfigDir(runtime.GOOS, e.getenv)
	}
	if libexec == "" {
		return ""
	}
	return filepath.Join(libexec, "plugins")
}

// source returns where the references' artifacts are read from.
func (f *verifyFlags) source(e *env, hosts []string) (oci.Source, error) {
	if f.ociLayout {
		return oci.NewLayouts(), nil
	}
	o, err := f.remoteOptions(e, hosts)
	if err != nil {
		return nil, err
	}
	return oci.NewRemote(o), nil
}

// remoteOptions returns the registry client's options: plain HTTP, TLS
// roots, credentials for hosts.
func (f *verifyFlags) remoteOptions(e *env, hosts []string) (oci.RemoteOptions, error) {
	o := oci.RemoteOptions{
		PlainHTTP: func(host string) bool {
			return f.plainHTTP || f.insecureRegistry[host] || oci.IsLocalhost(host)
		},
		UserAgent:       "keyward/" + version.Version,
		MaxConnsPerHost: f.concurrency,
		RequestTimeout:  f.requestTimeout,
	}
	if f.caFile != "" {
		pool, err := oci.RootCAsWithFile(f.caFile)
		switch {
		case errors.Is(err, oci.ErrNoCertificate):
			return o, usageErrorf("--ca-file %s holds no PEM certificate", f.caFile)
		case err != nil:
			return o, usageErrorf("--ca-file: %v", err)
		}
		o.RootCAs = pool
	}
	cred, err := f.credential(e, hosts)
	if err != nil {
		return o, err
	}
	o.Credential = cred
	return o, nil
}

// credential returns the registry credentials, in the order of package
// registryauth: --username with the password from standard input, for the
// registries hosts (those the references name) and no other; NOTATION_USERNAME and
// NOTATION_PASSWORD, for the same; the docker config file with its
// credential helpers.
func (f *verifyFlags) credential(e *env, hosts []string) (auth.CredentialFunc, error) {
	o := registryauth.Options{Hosts: hosts, Getenv: e.getenv}
	if p := e.getenv("PATH"); p != "" {
		o.Path = p
		o.HelperEnv = append(os.Environ(), "PATH="+p)
	}
	if f.passwordStdin {
		data, err := bounded.ReadAll(e.stdin, maxPassword, "the password on standard input")
		var tooLarge *bounded.TooLargeError
		if errors.As(err, &tooLarge) {
			return nil, usageErrorf("--password-stdin: the password on standard input is longer than %d bytes: pass the password or token itself, not a file of them", maxPassword)
		}
		if err != nil {
			return nil, fmt.Errorf("read the password from standard input: %w", err)
		}
		password := strings.TrimRight(string(data), "\r\n")
		if password == "" {
			return nil, usageErrorf("--password-stdin: standard input is empty")
		}
		o.Explicit = &auth.Credential{Username: f.username, Password: password}
	}
	r, err := registryauth.New(o)
	var ambiguous *registryauth.AmbiguousCredentialError
	if errors.As(err, &ambiguous) {
		return nil, usageErrorf("%v", err)
	}
	if err != nil {
		return nil, err
	}
	return r.Credential, nil
}

// resultWriter prints results as they complete.
type resultWriter struct {
	e       *env
	json    bool
	verbose bool
}

func (w *resultWriter) write(r *verify.ReferenceResult) {
	if w.json {
		enc := json.NewEncoder(w.e.stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(r)
		return
	}
	fmt.Fprintln(w.e.stdout, summary(r))
	if w.verbose {
		writeDetails(w.e.stdout, r)
	} else if r.Verified {
		// notation prints logged failures as warnings even when the
		// artifact verifies; so does keyward.
		for _, s := range r.Signatures {
			if s.Passed {
				for _, c := range s.Warnings() {
					fmt.Fprintf(w.e.stdout, "  warning: %s was set to %q and failed: %s\n", c.Check, c.Action, safeLines(c.Message, "    "))
				}
			}
		}
	}
}

// statsLine is the last line of --output json -v
// (verify-result.schema.json, $defs/summary).
type statsLine struct {
	Version    string              `json:"version"`
	Registries []oci.RegistryStats `json:"registries"`
}

// writeStats prints, with -v, what the run asked of each registry: a last
// JSON line, or a text line per registry.
func (w *resultWriter) writeStats(stats []oci.RegistryStats) {
	if w.json {
		if stats == nil {
			stats = []oci.RegistryStats{}
		}
		enc := json.NewEncoder(w.e.stdout)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(statsLine{Version: "1", Registries: stats})
		return
	}
	for _, s := range stats {
		fmt.Fprintf(w.e.stdout, "registry %s: %d request%s, %d token request%s\n", safe(s.Registry), s.Requests, plural(int(s.Requests)), s.TokenRequests, plural(int(s.TokenRequests)))
	}
}

// summary is the one line of a reference in text output; continuation
// lines of a multi-line message are indented under it.
func summary(r *verify.ReferenceResult) string {
	const indent = "          "
	name := safe(r.Reference)
	if r.Artifact != nil && !strings.Contains(r.Reference, "@") {
		name += " (" + safe(r.Artifact.Digest.String()) + ")"
	}
	switch {
	case r.Skipped:
		return fmt.Sprintf("SKIPPED   %s: statement %q has level skip, signatures were not read", name, r.Statement)
	case r.Verified:
		s := r.Signatures[len(r.Signatures)-1]
		who := ""
		if s.Signer != nil {
			who = ", signed by " + safe(s.Signer.Subject)
		}
		return fmt.Sprintf("VERIFIED  %s: signature %s passed statement %q (%s)%s", name, safe(short(s.Signature)), r.Statement, r.Level, who)
	case r.Error != nil:
		return fmt.Sprintf("FAILED    %s: %s", name, safeLines(r.Error.Message, indent))
	}
	return fmt.Sprintf("FAILED    %s", name)
}

func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// writeDetails prints every check of every signature evaluated.
func writeDetails(w io.Writer, r *verify.ReferenceResult) {
	if r.Tag != "" && r.Artifact != nil {
		fmt.Fprintf(w, "  tag %s resolved to %s\n", safe(r.Tag), safe(r.Artifact.Digest.String()))
	}
	if r.Statement != "" {
		fmt.Fprintf(w, "  statement %q, level %s\n", r.Statement, r.Level)
	}
	for i, s := range r.Signatures {
		verdict := "failed at " + string(s.FailedCheck)
		if s.Passed {
			verdict = "passed"
		}
		fmt.Fprintf(w, "  signature %d %s (%s): %s\n", i+1, safe(s.Signature), safe(s.MediaType), verdict)
		if s.Signer != nil {
			fmt.Fprintf(w, "    signer %s, %s, signed %s", safe(s.Signer.Subject), safe(string(s.Signer.SigningScheme)), s.Signer.SigningTime.UTC().Format(time.RFC3339))
			if s.Signer.Expiry != nil {
				fmt.Fprintf(w, ", expires %s", s.Signer.Expiry.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(w)
		}
		for _, c := range s.Checks {
			line := fmt.Sprintf("    %-19s %-7s %-8s", c.Check, orDash(string(c.Action)), c.Outcome)
			if c.Message != "" {
				line += " " + safeLines(c.Message, "                                        ")
			}
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
