package scan

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode"
)

// Reporter receives the records of a scan as they finish, then Close.
type Reporter interface {
	// Add writes or counts one record.
	Add(r *Record) error
	// Close writes what remains (totals) and releases what it holds.
	Close() error
}

// Totals counts records as they come: per verdict, per repository and per
// signer. Its size grows with repositories and signers, not artifacts.
type Totals struct {
	Artifacts, Signed, Unsigned, Errors, Orphans, Skipped int
	Verdicts                                              map[string]int
	Repositories                                          map[string]*RepoTotals
	Signers                                               map[string]int
}

// RepoTotals are a repository's counts.
type RepoTotals struct {
	Artifacts, Signed, Unsigned, Verified, Failed, Errors, Orphans int
}

// NewTotals returns empty totals.
func NewTotals() *Totals {
	return &Totals{Verdicts: map[string]int{}, Repositories: map[string]*RepoTotals{}, Signers: map[string]int{}}
}

// Add counts a record.
func (t *Totals) Add(r *Record) {
	repo := r.Repository
	if r.Registry != "" {
		repo = r.Registry + "/" + r.Repository
	}
	rt := t.Repositories[repo]
	if rt == nil {
		rt = &RepoTotals{}
		t.Repositories[repo] = rt
	}
	switch r.Kind {
	case KindOrphan:
		t.Orphans++
		rt.Orphans++
		return
	case KindSkipped:
		t.Skipped++
		t.Verdicts[VerdictSkipped]++
		return
	}
	t.Artifacts++
	rt.Artifacts++
	switch r.Status {
	case StatusSigned:
		t.Signed++
		rt.Signed++
	case StatusUnsigned:
		t.Unsigned++
		rt.Unsigned++
	case StatusError:
		t.Errors++
		rt.Errors++
	}
	if v := r.Verification; v != nil {
		t.Verdicts[v.Verdict]++
		if v.Verified {
			rt.Verified++
		} else {
			rt.Failed++
		}
	}
	for _, s := range Signers(r) {
		t.Signers[s]++
	}
}

// Signers names the signers of a record's signatures, one string each: the
// x509.subject identity, else the SANs with the OIDC issuer, else the key
// hint.
func Signers(r *Record) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.Signatures {
		if s.Role != RoleSignature {
			continue
		}
		for _, id := range s.Identities {
			n := signerName(id)
			if n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

func signerName(id *Identity) string {
	switch {
	case id.X509Subject != "":
		return id.X509Subject
	case len(id.SANs) > 0:
		n := strings.Join(id.SANs, ",")
		if id.OIDCIssuer != "" {
			n += " (issuer " + id.OIDCIssuer + ")"
		}
		return n
	case id.KeyHint != "":
		return "key " + id.KeyHint
	}
	return ""
}

// JSONReporter writes each record as one JSON line.
type JSONReporter struct{ enc *json.Encoder }

// NewJSONReporter writes to w.
func NewJSONReporter(w io.Writer) *JSONReporter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONReporter{enc: enc}
}

// Add writes r.
func (j *JSONReporter) Add(r *Record) error { return j.enc.Encode(r) }

// Close does nothing.
func (j *JSONReporter) Close() error { return nil }

// csvHeader names the CSV columns.
var csvHeader = []string{"kind", "registry", "repository", "digest", "tags", "platform", "index", "status", "formats", "signers", "verdict", "statement", "failedCheck", "findings", "errors"}

// CSVReporter writes one row per record (RFC 4180), with a header row.
type CSVReporter struct {
	w       *csv.Writer
	started bool
}

// NewCSVReporter writes to w.
func NewCSVReporter(w io.Writer) *CSVReporter { return &CSVReporter{w: csv.NewWriter(w)} }

// Add writes r's row.
func (c *CSVReporter) Add(r *Record) error {
	if !c.started {
		c.started = true
		if err := c.w.Write(csvHeader); err != nil {
			return err
		}
	}
	cells := row(r)
	for i, v := range cells {
		cells[i] = csvSafe(clean(v))
	}
	if err := c.w.Write(cells); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// csvSafe keeps a spreadsheet from reading a cell as a formula: text from
// a registry that starts with =, +, -, @ or a tab gets a leading ' (OWASP
// "CSV Injection").
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t", rune(v[0])) {
		return "'" + v
	}
	return v
}

// Close writes the header of an empty report.
func (c *CSVReporter) Close() error {
	if !c.started {
		c.started = true
		if err := c.w.Write(csvHeader); err != nil {
			return err
		}
	}
	c.w.Flush()
	return c.w.Error()
}

// row is a record's CSV row and HTML table row.
func row(r *Record) []string {
	verdict, statement, failed := "", "", ""
	if v := r.Verification; v != nil {
		verdict, statement, failed = v.Verdict, v.Statement, v.FailedCheck
	}
	return []string{r.Kind, r.Registry, r.Repository, r.Digest, strings.Join(r.Tags, " "), r.Platform, r.Index, r.Status,
		strings.Join(formats(r), " "), strings.Join(Signers(r), "; "), verdict, statement, failed,
		strings.Join(r.Findings, "; "), strings.Join(r.Errors, "; ")}
}

// formats lists a record's kinds of attachment, as role/format.
func formats(r *Record) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range r.Signatures {
		k := s.Role + ":" + s.Format
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// TextReporter writes a line per record and the totals at the end.
type TextReporter struct {
	w      io.Writer
	totals *Totals
}

// NewTextReporter writes to w.
func NewTextReporter(w io.Writer) *TextReporter { return &TextReporter{w: w, totals: NewTotals()} }

// Add writes r's line.
func (t *TextReporter) Add(r *Record) error {
	t.totals.Add(r)
	name := r.Reference
	if len(r.Tags) > 0 && r.Kind == KindArtifact {
		name += " (" + strings.Join(r.Tags, ", ") + ")"
	}
	if r.Platform != "" {
		name += " [" + r.Platform + "]"
	}
	line := fmt.Sprintf("%-10s %s", strings.ToUpper(r.Status), clean(name))
	if f := formats(r); len(f) > 0 {
		line += ": " + strings.Join(f, ", ")
	}
	if s := Signers(r); len(s) > 0 {
		line += "; signed by " + clean(strings.Join(s, "; "))
	}
	if v := r.Verification; v != nil {
		line += "; " + v.Verdict
		if v.Statement != "" {
			line += " (statement " + clean(v.Statement)
			if v.FailedCheck != "" {
				line += ", " + v.FailedCheck
			}
			line += ")"
		}
		if v.Verdict == VerdictNotVerifiable {
			line += ": signed, not verifiable under a Notary Project trust policy"
		}
	}
	if r.Status == StatusUnsigned {
		line += "; no signature in the registry (Docker Content Trust and Simple Signing lookaside not determinable)"
	}
	for _, e := range r.Errors {
		line += "\n           error: " + clean(e)
	}
	for _, f := range r.Findings {
		line += "\n           finding: " + clean(f)
	}
	_, err := fmt.Fprintln(t.w, line)
	return err
}

// Close writes the totals.
func (t *TextReporter) Close() error {
	return WriteTotals(t.w, t.totals)
}

// WriteTotals writes totals as text.
func WriteTotals(w io.Writer, t *Totals) error {
	fmt.Fprintf(w, "\n%d artifact%s: %d signed, %d unsigned, %d could not be read; %d orphaned signature%s; %d skipped tag%s\n",
		t.Artifacts, plural(t.Artifacts), t.Signed, t.Unsigned, t.Errors, t.Orphans, plural(t.Orphans), t.Skipped, plural(t.Skipped))
	if len(t.Verdicts) > 0 {
		var parts []string
		for _, k := range sortedKeys(t.Verdicts) {
			parts = append(parts, fmt.Sprintf("%s %d", k, t.Verdicts[k]))
		}
		fmt.Fprintf(w, "verdicts: %s\n", strings.Join(parts, ", "))
	}
	for _, k := range sortedKeys(t.Signers) {
		fmt.Fprintf(w, "signer %s: %d artifact%s\n", clean(k), t.Signers[k], plural(t.Signers[k]))
	}
	_, err := fmt.Fprintln(w, "Docker Content Trust and the Simple Signing lookaside are not visible from a registry: not determinable.")
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// clean replaces control characters (a registry's text reaching a
// terminal) by '?', and so Unicode format characters and line separators:
// bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069)
// make a terminal or a browser show a signer's name as another (the
// "Trojan Source" trick), zero-width characters hide in it.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp) {
			return '?'
		}
		return r
	}, s)
}
