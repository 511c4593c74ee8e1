package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/dirs"
	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/reference"
	"github.com/keyward/keyward/truststore"
)

func newPolicyCommand(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Validate, lint and explain notation trust policies",
		Long: `Work with notation trust policy documents: trustpolicy.json (or
trustpolicy.oci.json) for OCI artifacts and trustpolicy.blob.json for blobs.

Trust stores are read from notation's own folder,
{NOTATION_CONFIG}/truststore ($NOTATION_CONFIG, else
$XDG_CONFIG_HOME/notation or ~/.config/notation on Linux), unless
--trust-store names another folder holding x509/<type>/<name>/.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	c.AddCommand(
		newPolicyValidateCommand(e),
		newPolicyLintCommand(e),
		newPolicyExplainCommand(e),
		newPolicySchemaCommand(e),
		newPolicyIdentitiesCommand(e),
	)
	return c
}

// policyFlags are the flags the policy commands share.
type policyFlags struct {
	typ        string
	trustStore string
	output     string
}

func (f *policyFlags) register(c *cobra.Command, withType bool) {
	fl := c.Flags()
	if withType {
		fl.StringVar(&f.typ, "type", "", "document type: oci or blob (default: from the file name, else from the content)")
	}
	fl.StringVar(&f.trustStore, "trust-store", "", "folder holding x509/{ca,signingAuthority,tsa}/<name>/ (default: notation's {NOTATION_CONFIG}/truststore)")
	fl.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
}

func (f *policyFlags) check() error {
	if f.output != "text" && f.output != "json" {
		return usageErrorf("--output %q is not supported: use text or json", f.output)
	}
	switch f.typ {
	case "", "oci", "blob":
	default:
		return usageErrorf("--type %q is not supported: use oci or blob", f.typ)
	}
	return nil
}

func (f *policyFlags) docType() policy.DocumentType { return policy.DocumentType(f.typ) }

// trustStoreDir returns --trust-store or notation's default.
func (f *policyFlags) trustStoreDir(e *env) string {
	if f.trustStore != "" {
		return f.trustStore
	}
	return dirs.TrustStoreDir(runtime.GOOS, e.getenv)
}

// fileReport is the result for one file, as JSON output prints it.
type fileReport struct {
	File       string              `json:"file"`
	Type       policy.DocumentType `json:"type,omitempty"`
	DetectedBy string              `json:"detectedBy,omitempty"`
	Valid      bool                `json:"valid"`
	Statements int                 `json:"statements,omitempty"`
	Error      string              `json:"error,omitempty"`
	Problems   []policy.Problem    `json:"problems"`
	Findings   []policy.Problem    `json:"findings,omitempty"`
	doc        *policy.Document
}

// loadReport reads and validates one file.
func loadReport(file string, typ policy.DocumentType) fileReport {
	r := fileReport{File: file, Problems: []policy.Problem{}}
	data, err := policy.ReadFile(file)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Type, r.DetectedBy = typ, "--type"
	if typ == policy.TypeAuto {
		r.Type, r.DetectedBy = policy.DetectType(file, data)
	}
	doc, err := policy.Parse(data, file, r.Type)
	var ve *policy.ValidationError
	switch {
	case errors.As(err, &ve):
		r.Problems = ve.Problems
	case err != nil:
		r.Error = err.Error()
	default:
		r.Valid, r.doc, r.Statements = true, doc, len(doc.Statements())
	}
	return r
}

func typeNoun(t policy.DocumentType) string {
	if t == policy.TypeBlob {
		return "blob trust policy"
	}
	return "OCI trust policy"
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeProblem prints a problem over up to three lines.
func writeProblem(w io.Writer, indent string, p policy.Problem) {
	loc := p.Location()
	if loc != "" {
		loc += ": "
	}
	fmt.Fprintf(w, "%s%s%s: %s [%s]\n", indent, loc, p.Severity, safeLines(p.Message, indent+"    "), p.Rule)
	var at []string
	ptr := p.Pointer
	if ptr == "" {
		ptr = "(document)"
	}
	at = append(at, "at "+ptr)
	if p.Statement != "" {
		at = append(at, fmt.Sprintf("statement %q", p.Statement))
	}
	if p.Value != "" {
		at = append(at, "value "+p.Value)
	}
	fmt.Fprintf(w, "%s    %s\n", indent, strings.Join(at, ", "))
	if p.Fix != "" {
		fmt.Fprintf(w, "%s    fix: %s\n", indent, safeLines(p.Fix, indent+"    "))
	}
}

func newPolicyValidateCommand(e *env) *cobra.Command {
	var f policyFlags
	c := &cobra.Command{
		Use:   "validate [--type oci|blob] [--trust-store DIR] FILE...",
		Short: "Check trust policy documents against the schema and every notation rule",
		Long: `Check trust policy documents against trustpolicy.schema.json and every rule
notation v1.3.2 applies, reporting all problems (notation stops at the
first), each with its line and column, JSON pointer, statement, value and
fix. Where the rule is notation's, the message is notation's.

keyward is stricter than notation in a few documented ways: unknown
properties (notation ignores them, so a misspelt key silently weakens a
policy), repeated keys, null values, text after the document, invalid
UTF-8, a global blob statement with level skip, and keyward: trusted
identities that do not parse (reported at the bad clause) are errors.

With --trust-store, every trust store the documents reference must exist
there and hold certificates notation accepts.

Exit status: 0 when every file is valid, 1 when one is not, 2 for usage
errors.`,
		Example: `  keyward policy validate ~/.config/notation/trustpolicy.json
  keyward policy validate --trust-store ~/.config/notation/truststore trustpolicy.json
  keyward policy validate --type blob --output json policies/*.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, files []string) error {
			if err := f.check(); err != nil {
				return err
			}
			var ts *truststore.TrustStore
			if c.Flags().Changed("trust-store") {
				ts = truststore.New(f.trustStore)
			}
			return policyValidate(e, f, ts, files)
		},
	}
	f.register(c, true)
	return c
}

func policyValidate(e *env, f policyFlags, ts *truststore.TrustStore, files []string) error {
	reports := make([]fileReport, 0, len(files))
	allValid := true
	for _, file := range files {
		r := loadReport(file, f.docType())
		if r.Valid && ts != nil {
			if ps := policy.CheckTrustStores(r.doc, ts); len(ps) > 0 {
				r.Problems, r.Valid = ps, false
			}
		}
		allValid = allValid && r.Valid
		reports = append(reports, r)
	}
	if f.output == "json" {
		if err := writeJSON(e.stdout, struct {
			Valid bool         `json:"valid"`
			Files []fileReport `json:"files"`
		}{allValid, reports}); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			switch {
			case r.Error != "":
				fmt.Fprintf(e.stdout, "%s: error: %s\n", r.File, r.Error)
			case r.Valid:
				fmt.Fprintf(e.stdout, "%s: valid %s, %d statement%s\n", r.File, typeNoun(r.Type), r.Statements, plural(r.Statements))
			default:
				fmt.Fprintf(e.stdout, "%s: invalid %s, %d problem%s:\n", r.File, typeNoun(r.Type), len(r.Problems), plural(len(r.Problems)))
				for _, p := range r.Problems {
					writeProblem(e.stdout, "  ", p)
				}
			}
		}
	}
	if !allValid {
		return &exitError{status: exitFailure}
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func newPolicyLintCommand(e *env) *cobra.Command {
	var f policyFlags
	var failOn string
	c := &cobra.Command{
		Use:   "lint [--trust-store DIR] [--fail-on error|warning|info|never] FILE...",
		Short: "Find valid but risky settings in trust policies and their trust stores",
		Long: `Report settings that notation accepts but that weaken a policy, each with a
severity and a fix: a wildcard identity under an enforcing level, an audit
or skip level on the "*" scope, overrides that weaken authenticity or
revocation, tsa: stores that are never used or verifyTimestamp without one,
identities naming only C, ST and O, identities that can match the same
certificate, and trust stores that are missing, empty, expired or hold
non-CA certificates (read from --trust-store, by default notation's).

Files that are not valid are reported as by validate.

Exit status: 1 when a file is invalid or a finding is at least as severe as
--fail-on (default warning), else 0; 2 for usage errors.`,
		Example: `  keyward policy lint ~/.config/notation/trustpolicy.json
  keyward policy lint --trust-store ./truststore --fail-on error trustpolicy.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, files []string) error {
			if err := f.check(); err != nil {
				return err
			}
			var threshold policy.Severity
			switch failOn {
			case "error", "warning", "info":
				threshold = policy.Severity(failOn)
			case "never":
			default:
				return usageErrorf("--fail-on %q is not supported: use error, warning, info or never", failOn)
			}
			return policyLint(e, f, threshold, files)
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&failOn, "fail-on", "warning", "lowest severity that makes the exit status 1: error, warning, info or never")
	return c
}

func policyLint(e *env, f policyFlags, threshold policy.Severity, files []string) error {
	ts := truststore.New(f.trustStoreDir(e))
	failed := false
	reports := make([]fileReport, 0, len(files))
	for _, file := range files {
		r := loadReport(file, f.docType())
		if r.Valid {
			r.Findings = policy.Lint(r.doc, policy.LintOptions{TrustStore: ts})
			for _, p := range r.Findings {
				if threshold != "" && p.Severity.AtLeast(threshold) {
					failed = true
				}
			}
		} else {
			failed = true
		}
		if r.Findings == nil {
			r.Findings = []policy.Problem{}
		}
		reports = append(reports, r)
	}
	if f.output == "json" {
		if err := writeJSON(e.stdout, struct {
			TrustStore string       `json:"trustStore"`
			Files      []fileReport `json:"files"`
		}{ts.Dir(), reports}); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			switch {
			case r.Error != "":
				fmt.Fprintf(e.stdout, "%s: error: %s\n", r.File, r.Error)
			case !r.Valid:
				fmt.Fprintf(e.stdout, "%s: invalid %s, %d problem%s:\n", r.File, typeNoun(r.Type), len(r.Problems), plural(len(r.Problems)))
				for _, p := range r.Problems {
					writeProblem(e.stdout, "  ", p)
				}
			case len(r.Findings) == 0:
				fmt.Fprintf(e.stdout, "%s: no findings (trust stores from %s)\n", r.File, ts.Dir())
			default:
				fmt.Fprintf(e.stdout, "%s: %s, trust stores from %s:\n", r.File, countFindings(r.Findings), ts.Dir())
				for _, p := range r.Findings {
					writeProblem(e.stdout, "  ", p)
				}
			}
		}
	}
	if failed {
		return &exitError{status: exitFailure}
	}
	return nil
}

func countFindings(ps []policy.Problem) string {
	counts := map[policy.Severity]int{}
	for _, p := range ps {
		counts[p.Severity]++
	}
	var parts []string
	for _, s := range []policy.Severity{policy.SeverityError, policy.SeverityWarning, policy.SeverityInfo} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s%s", n, s, plural(n)))
		}
	}
	return fmt.Sprintf("%d finding%s (%s)", len(ps), plural(len(ps)), strings.Join(parts, ", "))
}

func newPolicyExplainCommand(e *env) *cobra.Command {
	var f policyFlags
	var file string
	c := &cobra.Command{
		Use:   "explain [--policy FILE] [--trust-store DIR] REFERENCE | [NAME]",
		Short: "Say which statement applies to an artifact, why, and what verification under it does",
		Long: `Select the statement that applies to an artifact as notation does, and
explain it: why it was chosen, the effective action (enforce, log or skip)
of each check (integrity, authenticity, authenticTimestamp, expiry,
revocation) and where it comes from, when timestamps are verified, the trust
stores with their certificates' subjects and validity, and the trusted
identities.

For an OCI trust policy, REFERENCE is host[:port]/repository@digest (a
:tag is accepted and reported as such: notation resolves tags to digests).
The statement listing the repository exactly applies, else the "*"
statement. For a blob trust policy the argument is the policy name;
without one the global policy applies.

--policy defaults to notation's {NOTATION_CONFIG}/trustpolicy.json.

Exit status: 0 when a statement applies, 1 when none does or the policy is
invalid, 2 for usage errors.`,
		Example: `  keyward policy explain registry.example.com/team/app@sha256:...
  keyward policy explain --policy trustpolicy.json --trust-store ./truststore localhost:5000/app:v1
  keyward policy explain --policy trustpolicy.blob.json release-artifacts`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if file == "" {
				file = dirs.PolicyFile(runtime.GOOS, e.getenv)
			}
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			return policyExplain(e, f, file, arg)
		},
	}
	f.register(c, true)
	c.Flags().StringVar(&file, "policy", "", "trust policy document (default: notation's {NOTATION_CONFIG}/trustpolicy.json)")
	return c
}

func policyExplain(e *env, f policyFlags, file, arg string) error {
	r := loadReport(file, f.docType())
	if r.Error != "" {
		return errors.New(r.Error)
	}
	if !r.Valid {
		fmt.Fprintf(e.stderr, "%s: invalid %s, %d problem%s:\n", r.File, typeNoun(r.Type), len(r.Problems), plural(len(r.Problems)))
		for _, p := range r.Problems {
			writeProblem(e.stderr, "  ", p)
		}
		return &exitError{status: exitFailure}
	}
	var sel policy.Selection
	var err error
	if r.doc.Type() == policy.TypeOCI {
		if arg == "" {
			return usageErrorf("an OCI trust policy needs the artifact reference to explain (host[:port]/repository@digest)")
		}
		ref, perr := reference.Parse(arg)
		if perr != nil {
			return perr
		}
		sel, err = r.doc.Select(ref)
	} else {
		sel, err = r.doc.SelectBlob(arg)
	}
	if err != nil {
		return err
	}
	ex := policy.Explain(r.doc, sel, policy.ExplainOptions{TrustStore: truststore.New(f.trustStoreDir(e))})
	ex.PolicyName = ""
	if r.doc.Type() == policy.TypeBlob {
		ex.PolicyName = arg
	}
	if f.output == "json" {
		return writeJSON(e.stdout, ex)
	}
	writeExplanation(e.stdout, ex)
	return nil
}

func writeExplanation(w io.Writer, ex policy.Explanation) {
	fmt.Fprintf(w, "Policy:      %s (%s)\n", ex.File, typeNoun(ex.Type))
	if ex.Reference != nil {
		fmt.Fprintf(w, "Artifact:    %s\n", safe(ex.Reference.Raw))
		fmt.Fprintf(w, "Repository:  %s\n", safe(ex.Reference.Repository))
	} else if ex.PolicyName != "" {
		fmt.Fprintf(w, "Policy name: %s\n", ex.PolicyName)
	} else {
		fmt.Fprintf(w, "Policy name: (none: the global policy)\n")
	}
	fmt.Fprintf(w, "Statement:   %q at %s:%d:%d (%s)\n", ex.Statement, ex.File, ex.Line, ex.Column, ex.Pointer)
	fmt.Fprintf(w, "Why:         %s\n", ex.Reason)
	for _, n := range ex.Notes {
		fmt.Fprintf(w, "Note:        %s\n", n)
	}
	level := string(ex.Level)
	if ex.Custom {
		level += " with overrides (notation calls it \"custom\")"
	}
	fmt.Fprintf(w, "Level:       %s\n", level)
	fmt.Fprintf(w, "\nChecks (what a failure does):\n")
	for _, c := range ex.Checks {
		src := c.Source
		if c.Source == "override" {
			src = fmt.Sprintf("override; level %s gives %s", ex.Level, c.LevelAction)
		}
		fmt.Fprintf(w, "  %-19s %-8s (%s)\n", c.Check, c.Action, src)
	}
	fmt.Fprintf(w, "\nTimestamps:  %s\n", ex.Timestamps)
	fmt.Fprintf(w, "\nTrust stores:\n")
	if len(ex.TrustStores) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
	for _, s := range ex.TrustStores {
		fmt.Fprintf(w, "  %s: %s\n", s.Ref, s.Role)
		if s.Path != "" {
			fmt.Fprintf(w, "    folder: %s\n", s.Path)
		}
		if s.Error != "" {
			fmt.Fprintf(w, "    unusable: %s\n", s.Error)
		}
		for _, c := range s.Certificates {
			kind := "not a CA"
			if c.CA {
				kind = "CA"
			}
			if c.SelfSigned {
				kind += ", self-signed"
			}
			fmt.Fprintf(w, "    %s: %s (%s)\n", safe(c.File), safe(c.Subject), kind)
			fmt.Fprintf(w, "      valid %s to %s, %s; sha256 %s\n", c.NotBefore.Format("2006-01-02"), c.NotAfter.Format("2006-01-02"), c.Status, c.SHA256)
		}
	}
	fmt.Fprintf(w, "\nTrusted identities:\n")
	if len(ex.TrustedIdentities) == 0 {
		fmt.Fprintf(w, "  (none)\n")
	}
	for _, id := range ex.TrustedIdentities {
		fmt.Fprintf(w, "  %s\n    %s\n", safe(id.Identity), safeLines(id.Meaning, "    "))
	}
}

func newPolicySchemaCommand(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of trust policy documents",
		Long: `Print trustpolicy.schema.json, the JSON Schema (draft 2020-12) keyward
validates trust policy documents with. Editors show its descriptions and
flag errors as you type; its $id is ` + policy.SchemaID + `.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := e.stdout.Write(policy.Schema())
			return err
		},
	}
}
