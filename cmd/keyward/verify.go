package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	keyward "github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/dirs"
	"github.com/keyward/keyward/internal/version"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/truststore"
	"github.com/keyward/keyward/verify"
)

func verifyResultSchema() []byte { return keyward.VerifyResultSchema() }

// ResultVersion is the version of the JSON result format
// (verify-result.schema.json).
const ResultVersion = "1"

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
~/.config/notation. Registry credentials come from the docker credential
store notation uses ($DOCKER_CONFIG/config.json, else ~/.docker/config.json,
with its credential helpers), or from --username and --password-stdin.

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
	fl.IntVar(&f.concurrency, "concurrency", 16, "references verified at once")
	fl.StringVar(&f.fromFile, "from-file", "", "read references from this file, one a line ('-' for standard input; # starts a comment)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json (JSON Lines)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "text output: print every check of every signature evaluated")
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

// maxReferencesFile bounds --from-file.
const maxReferencesFile = 16 << 20

// readReferences returns the references of --from-file, one a line; blank
// lines and lines starting with # are skipped.
func readReferences(e *env, path string) ([]string, error) {
	var r io.Reader
	if path == "-" {
		r = e.stdin
	} else {
		file, err := os.Open(path)
		if err != nil {
			return nil, usageErrorf("--from-file: %v", err)
		}
		defer file.Close()
		r = file
	}
	data, err := io.ReadAll(io.LimitReader(r, maxReferencesFile+1))
	if err != nil {
		return nil, fmt.Errorf("read --from-file %s: %w", path, err)
	}
	if len(data) > maxReferencesFile {
		return nil, usageErrorf("--from-file %s is larger than %d bytes", path, maxReferencesFile)
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

// isLocalhost reports hosts notation reaches over plain HTTP without a flag.
func isLocalhost(host string) bool {
	h := host
	if i := strings.LastIndex(host, ":"); i >= 0 && !strings.Contains(host[i:], "]") {
		h = host[:i]
	}
	return h == "localhost"
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
			return &exitError{status: exitFailure}
		}
		return err
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
	}
	if dir := dirs.CacheDir(e.getenv); dir != "" {
		// A missing cache only costs downloads.
		if c, err := verify.NewFileCache(filepath.Join(dir, "crl")); err == nil {
			opts.CRLCache = c
		}
	}
	verifier, err := verify.NewVerifier(opts)
	if err != nil {
		return err
	}
	src, err := f.source(e, refs)
	if err != nil {
		return err
	}

	out := &resultWriter{e: e, json: f.output == "json", verbose: f.verbose}
	failed := verifyAll(ctx, refs, f.concurrency, func(ctx context.Context, ref string) *referenceResult {
		return verifyReference(ctx, f, doc, verifier, src, ref)
	}, out.write)
	if failed > 0 {
		if !out.json {
			fmt.Fprintf(e.stderr, "%d of %d reference%s did not verify\n", failed, len(refs), plural(len(refs)))
		}
		return &exitError{status: exitFailure}
	}
	return nil
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
func (f *verifyFlags) source(e *env, refs []string) (oci.Source, error) {
	if f.ociLayout {
		return oci.NewLayouts(f.scope), nil
	}
	o := oci.RemoteOptions{
		PlainHTTP: func(host string) bool {
			return f.plainHTTP || f.insecureRegistry[host] || isLocalhost(host)
		},
		UserAgent:       "keyward/" + version.Version,
		MaxConnsPerHost: f.concurrency,
	}
	if f.caFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, usageErrorf("--ca-file: %v", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--ca-file %s holds no PEM certificate", f.caFile)
		}
		o.RootCAs = pool
	}
	cred, err := f.credential(e, refs)
	if err != nil {
		return nil, err
	}
	o.Credential = cred
	return oci.NewRemote(o), nil
}

// credential returns the registry credentials: --username with the password
// from standard input, for the registries the references name and no other;
// else the docker credential store.
func (f *verifyFlags) credential(e *env, refs []string) (auth.CredentialFunc, error) {
	if f.passwordStdin {
		data, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
		if err != nil {
			return nil, fmt.Errorf("read the password from standard input: %w", err)
		}
		password := strings.TrimRight(string(data), "\r\n")
		if password == "" {
			return nil, usageErrorf("--password-stdin: standard input is empty")
		}
		hosts := map[string]bool{}
		for _, r := range refs {
			if ref, err := oci.ParseReference(r); err == nil {
				hosts[ref.Registry] = true
			}
		}
		c := auth.Credential{Username: f.username, Password: password}
		return func(_ context.Context, host string) (auth.Credential, error) {
			if hosts[host] {
				return c, nil
			}
			return auth.EmptyCredential, nil
		}, nil
	}
	path := dockerConfigPath(e)
	if path == "" {
		return nil, nil
	}
	store, err := credentials.NewStore(path, credentials.StoreOptions{})
	if err != nil {
		return nil, fmt.Errorf("docker credential store %s: %w", path, err)
	}
	return credentials.Credential(store), nil
}

// dockerConfigPath is $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json, the store notation v1.3.2 logs in to.
func dockerConfigPath(e *env) string {
	if d := e.getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	if h := e.getenv("HOME"); h != "" {
		return filepath.Join(h, ".docker", "config.json")
	}
	return ""
}

// referenceResult is one line of --output json: the verification of one
// reference (verify-result.schema.json).
type referenceResult struct {
	Version   string `json:"version"`
	Reference string `json:"reference"`
	// Scope is the registry scope the statement was selected by.
	Scope string `json:"scope,omitempty"`
	// Tag is the tag the reference named, resolved to Artifact.Digest.
	Tag      string              `json:"tag,omitempty"`
	Artifact *ocispec.Descriptor `json:"artifact,omitempty"`
	// Statement and Level name the trust policy statement applied.
	Statement string       `json:"statement,omitempty"`
	Level     policy.Level `json:"level,omitempty"`
	Verified  bool         `json:"verified"`
	// Skipped: the statement's level is skip; nothing was fetched.
	Skipped bool `json:"skipped"`
	// Signatures are the signatures evaluated, in order; evaluation stops
	// at the first that passes, as in notation.
	Signatures []*verify.Result `json:"signatures"`
	Error      *resultError     `json:"error,omitempty"`
	// Elapsed is the wall time of this reference, in milliseconds.
	ElapsedMS int64 `json:"elapsedMs"`
}

// resultError says why a reference did not verify.
type resultError struct {
	// Kind is no-signature, limit-exceeded, verification-failed,
	// retrieval-failed (the evaluator's), or policy (no statement applies)
	// or resolve (the reference could not be resolved).
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func failure(r *referenceResult, kind string, err error) *referenceResult {
	r.Error = &resultError{Kind: kind, Message: err.Error()}
	return r
}

// policyReference is the reference the trust policy selects by: host/repo
// (or the layout's scope) with the digest or tag.
func policyReference(f *verifyFlags, ref string) (scope, selectBy string, err error) {
	if f.ociLayout {
		if i := strings.LastIndex(ref, "@"); i >= 0 {
			return f.scope, f.scope + ref[i:], nil
		}
		slash := strings.LastIndex(ref, "/")
		if i := strings.LastIndex(ref, ":"); i > slash {
			return f.scope, f.scope + ref[i:], nil
		}
		return "", "", fmt.Errorf("OCI layout reference %q names no tag or digest: use <path>@sha256:<digest> or <path>:<tag>", ref)
	}
	r, err := oci.ParseReference(ref)
	if err != nil {
		return "", "", err
	}
	scope = r.Registry + "/" + r.Repository
	if strings.Contains(r.Reference, ":") {
		return scope, scope + "@" + r.Reference, nil
	}
	return scope, scope + ":" + r.Reference, nil
}

// verifyReference verifies one reference; it never fails the batch.
func verifyReference(ctx context.Context, f *verifyFlags, doc *policy.Document, v *verify.Verifier, src oci.Source, ref string) *referenceResult {
	start := time.Now()
	r := &referenceResult{Version: ResultVersion, Reference: ref, Signatures: []*verify.Result{}}
	defer func() { r.ElapsedMS = time.Since(start).Milliseconds() }()

	scope, selectBy, err := policyReference(f, ref)
	if err != nil {
		return failure(r, "resolve", err)
	}
	r.Scope = scope
	// The statement is chosen by repository before anything is fetched, so
	// that a skip statement never touches the registry (spec "Signature
	// Verification" step 2).
	sel, err := doc.Select(selectBy)
	if err != nil {
		return failure(r, "policy", err)
	}
	st := sel.Statement
	r.Statement, r.Level = st.Name(), st.Level()
	if st.SkipsVerification() {
		r.Verified, r.Skipped = true, true
		r.Tag = sel.Reference.Tag
		return r
	}
	a, err := src.Resolve(ctx, ref)
	if err != nil {
		return failure(r, "resolve", err)
	}
	r.Tag = a.Tag
	desc := a.Descriptor
	r.Artifact = &desc
	res, err := v.VerifyArtifact(ctx, verify.ArtifactRequest{
		Request: verify.Request{
			Statement:    st,
			Artifact:     a.Descriptor,
			Reference:    scope + "@" + a.Descriptor.Digest.String(),
			PluginConfig: f.pluginConfigMap,
			UserMetadata: f.metadataMap,
		},
		MaxSignatures: f.maxSignatures,
	}, verify.FromOCI(src, a))
	if res != nil {
		r.Signatures = append(r.Signatures, res.Signatures...)
		r.Verified = res.Passed
	}
	if err != nil {
		kind := "verification-failed"
		var ae *verify.ArtifactError
		if errors.As(err, &ae) {
			kind = string(ae.Kind)
		}
		r.Verified = false
		return failure(r, kind, err)
	}
	return r
}

// verifyAll verifies refs with at most n at once and hands each result to
// emit as it completes (emit is called by one goroutine at a time). It
// returns how many did not verify.
func verifyAll(ctx context.Context, refs []string, n int, one func(context.Context, string) *referenceResult, emit func(*referenceResult)) int {
	results := make(chan *referenceResult)
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(n, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range work {
				results <- one(ctx, ref)
			}
		}()
	}
	go func() {
		for _, ref := range refs {
			work <- ref
		}
		close(work)
		wg.Wait()
		close(results)
	}()
	failed := 0
	for r := range results {
		if !r.Verified {
			failed++
		}
		emit(r)
	}
	return failed
}

// resultWriter prints results as they complete.
type resultWriter struct {
	e       *env
	json    bool
	verbose bool
}

func (w *resultWriter) write(r *referenceResult) {
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
					fmt.Fprintf(w.e.stdout, "  warning: %s was set to %q and failed: %s\n", c.Check, c.Action, c.Message)
				}
			}
		}
	}
}

// summary is the one line of a reference in text output.
func summary(r *referenceResult) string {
	name := r.Reference
	if r.Artifact != nil && !strings.Contains(r.Reference, "@") {
		name += " (" + r.Artifact.Digest.String() + ")"
	}
	switch {
	case r.Skipped:
		return fmt.Sprintf("SKIPPED   %s: statement %q has level skip, signatures were not read", name, r.Statement)
	case r.Verified:
		s := r.Signatures[len(r.Signatures)-1]
		who := ""
		if s.Signer != nil {
			who = ", signed by " + s.Signer.Subject
		}
		return fmt.Sprintf("VERIFIED  %s: signature %s passed statement %q (%s)%s", name, short(s.Signature), r.Statement, r.Level, who)
	case r.Error != nil:
		return fmt.Sprintf("FAILED    %s: %s", name, r.Error.Message)
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
func writeDetails(w io.Writer, r *referenceResult) {
	if r.Tag != "" && r.Artifact != nil {
		fmt.Fprintf(w, "  tag %s resolved to %s\n", r.Tag, r.Artifact.Digest)
	}
	if r.Statement != "" {
		fmt.Fprintf(w, "  statement %q, level %s\n", r.Statement, r.Level)
	}
	for i, s := range r.Signatures {
		verdict := "failed at " + string(s.FailedCheck)
		if s.Passed {
			verdict = "passed"
		}
		fmt.Fprintf(w, "  signature %d %s (%s): %s\n", i+1, s.Signature, s.MediaType, verdict)
		if s.Signer != nil {
			fmt.Fprintf(w, "    signer %s, %s, signed %s", s.Signer.Subject, s.Signer.SigningScheme, s.Signer.SigningTime.UTC().Format(time.RFC3339))
			if s.Signer.Expiry != nil {
				fmt.Fprintf(w, ", expires %s", s.Signer.Expiry.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(w)
		}
		for _, c := range s.Checks {
			line := fmt.Sprintf("    %-19s %-7s %-8s", c.Check, orDash(string(c.Action)), c.Outcome)
			if c.Message != "" {
				line += " " + c.Message
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
