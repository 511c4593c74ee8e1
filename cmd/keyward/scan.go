package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	keyward "github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/bounded"
	"github.com/keyward/keyward/oci"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/scan"
	"github.com/keyward/keyward/verify"
)

// scanFlags are the flags of keyward scan; v holds those it shares with
// keyward verify (trust policy, trust store, registry access).
type scanFlags struct {
	v                   verifyFlags
	verify              bool
	layout              string
	registryConcurrency int
	platforms           []string
	repositories        []string
	tagRegex            string
	minAge, maxAge      time.Duration
	maxBytes            int64
	maxRateLimitWait    time.Duration
	state               string
	reports             []string
	progress            string
	cosignKeys          []string
}

func newScanCommand(e *env) *cobra.Command {
	var f scanFlags
	c := &cobra.Command{
		Use:   "scan [flags] HOST[/REPOSITORY-PREFIX]...",
		Short: "Inventory the signatures in registries and verify them against a trust policy",
		Long: `Walk registries (or an OCI image layout) and report, for every artifact, which
signatures, attestations and SBOMs it has, of which kind, who signed them, and
with a trust policy the verdict keyward verify gives it.

HOST scans every repository the registry's catalog lists; HOST/PREFIX those
equal to or below PREFIX (and PREFIX itself when the registry does not list
its repositories). A registry that refuses its catalog (Docker Hub, GHCR,
Harbor for non-admins) is an error, never an empty report: name its
repositories. --oci-layout DIR scans a layout, with --scope naming its
repository for the trust policy.

Per artifact (each tag's digest; an image index and each of its platform
manifests, or those of --platforms) the scan finds Notary Project signatures
(referrers API or its tag schema, both manifest forms), cosign signatures,
attestations and SBOMs (sha256-<hex>.sig/.att/.sbom tags and OCI 1.1
referrers), Sigstore bundles, and Simple Signing payloads. Signers are given
as trusted identities ready to paste: x509.subject and keyward: identities
(SANs, OIDC issuer and Fulcio extensions, key pins); an identity is
"verified": true only when its signature verified: under the trust policy,
or for a key-based cosign signature (which names no key) with a key given
by --cosign-key.
Signatures whose subject is gone are reported as orphans. Docker Content
Trust and the Simple Signing lookaside are not visible from a registry and
are reported as not determinable, never as unsigned.

With --policy, --trust-store or --verify (notation's own configuration, as
keyward verify uses by default) every artifact gets keyward verify's verdict,
statement and failing check; tags of repositories whose statement has level
skip are counted, not fetched. An artifact with only cosign signatures fails
a Notary Project trust policy as keyward verify fails it, and is reported as
signed, not verifiable.

Age (--min-age, --max-age) is measured from the org.opencontainers.image.created
annotation of the manifest, else the image configuration's created time; an
artifact with neither passes the age filters.

Reports: -o text (a line per artifact and totals), json (JSON Lines, one
object per artifact, valid against scan-result.schema.json; --print-schema
prints it), csv, or html (self-contained, filtering in the browser); more
with --report FORMAT=FILE. --state FILE makes the scan resumable: a scan
killed and run again with the same file (and the same arguments and flags)
reports what was finished without fetching it again; records in error are
read again.

A 429 Too Many Requests pauses every request to that registry for its
Retry-After (at most 60 s). Once the pauses for one registry add up to more
than --max-rate-limit-wait, it is asked nothing more: its remaining artifacts
are reported in error (never unsigned) and the scan exits 1.

Exit status: 0 when nothing failed the trust policy and everything was read,
1 otherwise, 2 for a usage error.`,
		Example: `  keyward scan registry.example.com
  keyward scan --policy trustpolicy.json --trust-store ./truststore -o json registry.example.com/team
  keyward scan --platforms linux/amd64 --tag-regex '^v[0-9]' --report html=scan.html 127.0.0.1:5000
  keyward scan --state scan.state -o json registry.example.com >scan.jsonl`,
		RunE: func(c *cobra.Command, args []string) error {
			if ps, _ := c.Flags().GetBool("print-schema"); ps {
				_, err := e.stdout.Write(keyward.ScanResultSchema())
				return err
			}
			f.verify = f.verify || c.Flags().Changed("policy") || c.Flags().Changed("trust-store")
			return runScan(c.Context(), e, &f, args)
		},
	}
	fl := c.Flags()
	v := &f.v
	fl.StringVar(&v.policyFile, "policy", "", "verify against this trust policy file (implies --verify)")
	fl.StringVar(&v.trustStore, "trust-store", "", "trust store folder (implies --verify; default: notation's {NOTATION_CONFIG}/truststore)")
	fl.BoolVar(&f.verify, "verify", false, "verify every artifact against notation's trust policy and trust store")
	fl.StringVar(&f.layout, "oci-layout", "", "scan this OCI image layout folder instead of registries")
	fl.StringVar(&v.scope, "scope", "", "with --oci-layout: the registry scope that selects the trust policy statement")
	fl.BoolVar(&v.plainHTTP, "plain-http", false, "reach every registry over plain HTTP (localhost is always plain HTTP)")
	fl.StringArrayVar(&v.insecure, "insecure-registry", nil, "reach this registry host[:port] over plain HTTP (repeatable)")
	fl.StringVar(&v.caFile, "ca-file", "", "PEM file of CA certificates that registry TLS certificates may chain to")
	fl.StringVarP(&v.username, "username", "u", "", "registry user name (with --password-stdin)")
	fl.BoolVar(&v.passwordStdin, "password-stdin", false, "read the registry password or token from standard input")
	fl.IntVar(&v.maxSignatures, "max-signatures", verify.DefaultMaxSignatures, "most signatures evaluated per artifact")
	fl.StringArrayVar(&v.pluginConfig, "plugin-config", nil, "key=value passed to verification plugins (repeatable)")
	fl.DurationVar(&v.ocspTimeout, "ocsp-timeout", verify.DefaultOCSPTimeout, "timeout of each OCSP request")
	fl.DurationVar(&v.crlTimeout, "crl-timeout", verify.DefaultCRLTimeout, "timeout of each CRL download")
	fl.StringVar(&v.crlBundle, "crl-bundle", "", "offline CRL bundle: judge revocation from its CRLs only")
	fl.DurationVar(&v.requestTimeout, "request-timeout", oci.DefaultRequestTimeout, "time one registry request may take, its whole answer included")
	fl.IntVar(&v.concurrency, "concurrency", scan.DefaultConcurrency, "artifacts read at once, all registries together")
	fl.IntVar(&f.registryConcurrency, "registry-concurrency", scan.DefaultRegistryConcurrency, "artifacts read at once from one registry")
	fl.StringSliceVar(&f.platforms, "platforms", nil, "platform manifests of image indexes to scan, os/arch[/variant] (without variant: every variant), comma-separated (default: all)")
	fl.StringArrayVar(&f.repositories, "repository", nil, "scan repositories matching this glob (path.Match; repeatable)")
	fl.StringVar(&f.tagRegex, "tag-regex", "", "scan tags matching this regular expression (RE2, unanchored)")
	fl.DurationVar(&f.minAge, "min-age", 0, "scan artifacts created at least this long ago")
	fl.DurationVar(&f.maxAge, "max-age", 0, "scan artifacts created at most this long ago")
	fl.Int64Var(&f.maxBytes, "max-bytes", scan.DefaultMaxBytes, "most bytes fetched per artifact")
	fl.DurationVar(&f.maxRateLimitWait, "max-rate-limit-wait", scan.DefaultMaxRateLimitWait, "most time paused for one registry's 429 answers; then its remaining artifacts are in error")
	fl.StringVar(&f.state, "state", "", "state file (JSON Lines) that makes the scan resumable")
	fl.StringVarP(&v.output, "output", "o", "text", "standard output format: text, json (JSON Lines), csv or html")
	fl.StringArrayVar(&f.reports, "report", nil, "also write FORMAT=FILE (format text, json, csv or html; repeatable)")
	fl.StringArrayVar(&f.cosignKeys, "cosign-key", nil, "PEM public key (cosign.pub) to check key-based cosign signatures with, which name no key (repeatable)")
	fl.StringVar(&f.progress, "progress", "auto", "progress on standard error: auto (when it is a terminal), always or never")
	fl.Bool("print-schema", false, "print the JSON Schema of --output json lines and exit")
	return c
}

func validFormat(s string) bool {
	return s == "text" || s == "json" || s == "csv" || s == "html"
}

func (f *scanFlags) check(args []string) ([]scan.Target, error) {
	v := &f.v
	if !validFormat(v.output) {
		return nil, usageErrorf("--output %q is not supported: use text, json, csv or html", v.output)
	}
	for _, r := range f.reports {
		format, file, ok := strings.Cut(r, "=")
		if !ok || !validFormat(format) || file == "" {
			return nil, usageErrorf("--report %q: want FORMAT=FILE with FORMAT text, json, csv or html", r)
		}
	}
	if v.concurrency <= 0 || f.registryConcurrency <= 0 {
		return nil, usageErrorf("--concurrency and --registry-concurrency must be greater than 0")
	}
	if v.maxSignatures <= 0 {
		return nil, usageErrorf("--max-signatures %d: it must be greater than 0", v.maxSignatures)
	}
	if v.requestTimeout <= 0 {
		return nil, usageErrorf("--request-timeout %s: it must be greater than 0", v.requestTimeout)
	}
	if f.maxBytes <= 0 {
		return nil, usageErrorf("--max-bytes %d: it must be greater than 0", f.maxBytes)
	}
	if f.maxRateLimitWait <= 0 {
		return nil, usageErrorf("--max-rate-limit-wait %s: it must be greater than 0", f.maxRateLimitWait)
	}
	if f.minAge < 0 || f.maxAge < 0 || (f.maxAge > 0 && f.minAge > f.maxAge) {
		return nil, usageErrorf("--min-age %s, --max-age %s: ages are positive and --min-age is at most --max-age", f.minAge, f.maxAge)
	}
	if f.progress != "auto" && f.progress != "always" && f.progress != "never" {
		return nil, usageErrorf("--progress %q: use auto, always or never", f.progress)
	}
	for _, p := range f.platforms {
		if parts := strings.Split(p, "/"); len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
			return nil, usageErrorf("--platforms %q: want os/architecture[/variant], e.g. linux/amd64", p)
		}
	}
	for _, g := range f.repositories {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, usageErrorf("--repository %q is not a valid glob: %v", g, err)
		}
	}
	if v.passwordStdin != (v.username != "") {
		return nil, usageErrorf("--username and --password-stdin go together: the password is read from standard input, never from the command line")
	}
	if f.layout != "" {
		if len(args) > 0 {
			return nil, usageErrorf("--oci-layout scans one layout: give no HOST argument with it")
		}
		if v.scope == "" {
			return nil, usageErrorf("--oci-layout needs --scope, the registry scope that selects the trust policy statement (e.g. --scope local/app)")
		}
		if err := policy.CheckRegistryScope(v.scope); err != nil {
			return nil, usageErrorf("--scope %q: %v", v.scope, err)
		}
		if v.username != "" || v.plainHTTP || len(v.insecure) > 0 || v.caFile != "" {
			return nil, usageErrorf("registry flags (--username, --plain-http, --insecure-registry, --ca-file) do not apply with --oci-layout")
		}
		return []scan.Target{{Layout: f.layout, Scope: v.scope}}, nil
	}
	if v.scope != "" {
		return nil, usageErrorf("--scope applies only with --oci-layout")
	}
	if len(args) == 0 {
		return nil, usageErrorf("nothing to scan: give HOST or HOST/REPOSITORY arguments, or --oci-layout DIR")
	}
	var targets []scan.Target
	for _, a := range args {
		t, err := scan.ParseTarget(a)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		targets = append(targets, t)
	}
	var err error
	if v.pluginConfigMap, err = parseKeyValues("plugin-config", v.pluginConfig); err != nil {
		return nil, err
	}
	v.insecureRegistry = map[string]bool{}
	for _, h := range v.insecure {
		v.insecureRegistry[h] = true
	}
	if v.crlBundle != "" {
		if err := checkCRLBundle(v.crlBundle); err != nil {
			return nil, err
		}
	}
	return targets, nil
}

func runScan(ctx context.Context, e *env, f *scanFlags, args []string) error {
	targets, err := f.check(args)
	if err != nil {
		return err
	}
	var tagRegex *regexp.Regexp
	if f.tagRegex != "" {
		if tagRegex, err = regexp.Compile(f.tagRegex); err != nil {
			return usageErrorf("--tag-regex %q: %v", f.tagRegex, err)
		}
	}
	var batch *verify.Batch
	if f.verify {
		if batch, err = f.v.batch(e, nil); err != nil {
			return err
		}
	}
	o := scan.Options{Concurrency: f.v.concurrency, RegistryConcurrency: f.registryConcurrency, Platforms: f.platforms,
		Repositories: f.repositories, TagRegex: tagRegex, MinAge: f.minAge, MaxAge: f.maxAge, MaxBytes: f.maxBytes, Batch: batch}
	if f.layout != "" {
		f.v.ociLayout = true
		o.Store = oci.NewLayouts()
	} else {
		var hosts []string
		for _, t := range targets {
			hosts = append(hosts, t.Registry)
		}
		ro, err := f.v.remoteOptions(e, hosts)
		if err != nil {
			return err
		}
		ro.MaxConnsPerHost = f.registryConcurrency * 2
		// A scan waits out rate limits longer than one verification:
		// retries up to 8 times, waits up to 8 s (a Retry-After beyond is
		// held by the pause transport for every worker).
		ro.Retries, ro.RetryWait = 8, 500*time.Millisecond
		pause := scan.NewPauseTransport(oci.NewTransport(ro))
		pause.MaxWait = f.maxRateLimitWait
		ro.Transport = pause
		remote := oci.NewRemote(ro)
		o.Store, o.Catalog = remote, remote
	}
	if batch != nil {
		batch.Source = o.Store
	}
	for _, path := range f.cosignKeys {
		data, err := bounded.ReadFile(path, maxIdentitiesInput, path)
		if err != nil {
			return usageErrorf("--cosign-key: %v", err)
		}
		k, err := scan.ParseCosignKey(data)
		if err != nil {
			return usageErrorf("--cosign-key %s: %v", path, err)
		}
		o.CosignKeys = append(o.CosignKeys, k)
	}
	if f.state != "" {
		st, err := scan.OpenState(f.state)
		if err != nil {
			return err
		}
		defer st.Close()
		o.State = st
	}
	reporters, closeFiles, err := f.reporters(e)
	if err != nil {
		return err
	}
	defer closeFiles()

	s := scan.New(o)
	stopProgress := f.startProgress(e, s)
	failed := 0
	var writeErr error
	runErr := s.Run(ctx, targets, func(r *scan.Record) {
		if r.FailedPolicy() {
			failed++
		}
		for _, rep := range reporters {
			if err := rep.Add(r); err != nil && writeErr == nil {
				writeErr = err
			}
		}
	})
	stopProgress()
	for _, rep := range reporters {
		if err := rep.Close(); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	if writeErr != nil {
		return fmt.Errorf("write the report: %w", writeErr)
	}
	if runErr != nil {
		// A refused catalog (scan.CatalogRefusedError) says which
		// repositories to name instead.
		fmt.Fprintf(e.stderr, "Error: %s\n", safeLines(runErr.Error(), "  "))
		return &exitError{status: exitFailure}
	}
	if failed > 0 {
		fmt.Fprintf(e.stderr, "%d artifact%s failed the trust policy or could not be read\n", failed, plural(failed))
		return &exitError{status: exitFailure}
	}
	return nil
}

// reporters opens the reports: standard output's and those of --report.
func (f *scanFlags) reporters(e *env) ([]scan.Reporter, func(), error) {
	var files []*os.File
	closeFiles := func() {
		for _, fl := range files {
			fl.Close()
		}
	}
	open := func(format string, w io.Writer) (scan.Reporter, error) {
		switch format {
		case "json":
			return scan.NewJSONReporter(w), nil
		case "csv":
			return scan.NewCSVReporter(w), nil
		case "html":
			return scan.NewHTMLReporter(w, "", "keyward scan report")
		}
		return scan.NewTextReporter(w), nil
	}
	first, err := open(f.v.output, e.stdout)
	if err != nil {
		return nil, closeFiles, err
	}
	out := []scan.Reporter{first}
	for _, r := range f.reports {
		format, path, _ := strings.Cut(r, "=")
		fl, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			closeFiles()
			return nil, func() {}, usageErrorf("--report %s: %v", r, err)
		}
		files = append(files, fl)
		rep, err := open(format, fl)
		if err != nil {
			closeFiles()
			return nil, func() {}, err
		}
		out = append(out, rep)
	}
	return out, closeFiles, nil
}

// startProgress prints the scan's counts, rate and ETA on standard error
// when it is a terminal (or --progress always), twice a second, and
// returns what stops it.
func (f *scanFlags) startProgress(e *env, s *scan.Scanner) func() {
	show := f.progress == "always"
	if f.progress == "auto" {
		if fl, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(fl.Fd())) {
			show = true
		}
	}
	if !show {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintf(e.stderr, "\r%s\n", progressLine(s.Progress(), time.Since(start)))
				return
			case <-t.C:
				fmt.Fprintf(e.stderr, "\r%s", progressLine(s.Progress(), time.Since(start)))
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// progressLine is "scanned D/N artifacts, R/s, ETA T".
func progressLine(p scan.Progress, elapsed time.Duration) string {
	fresh := p.Done - p.Restored
	rate := float64(fresh) / max(elapsed.Seconds(), 0.001)
	line := fmt.Sprintf("scanned %d/%d artifacts (%d from the state file), %.1f/s", p.Done, p.Discovered, p.Restored, rate)
	if left := p.Discovered - p.Done; left > 0 && rate > 0 {
		line += fmt.Sprintf(", ETA %s", time.Duration(float64(left)/rate*float64(time.Second)).Round(time.Second))
	} else {
		line += "          "
	}
	return line
}
