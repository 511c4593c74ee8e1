package scan

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"os"
)

// HTMLReporter writes a self-contained HTML report (no external asset):
// totals per verdict, repository and signer, and a table of the records
// that filters in the browser (a text box matching any cell, a verdict
// and a status menu; the filter can be set from the URL fragment as
// #q=TEXT&verdict=V&status=S). Rows are written to a temporary file as
// records come and copied into the page at Close, so memory holds only the
// totals.
type HTMLReporter struct {
	w      io.Writer
	rows   *os.File
	buf    *bufio.Writer
	totals *Totals
	title  string
}

// NewHTMLReporter writes to w at Close; rows wait in a temporary file of
// dir ("" for the system's).
func NewHTMLReporter(w io.Writer, dir, title string) (*HTMLReporter, error) {
	f, err := os.CreateTemp(dir, "keyward-scan-rows-*.html")
	if err != nil {
		return nil, fmt.Errorf("html report: %w", err)
	}
	return &HTMLReporter{w: w, rows: f, buf: bufio.NewWriter(f), totals: NewTotals(), title: title}, nil
}

// Add writes r's table row to the temporary file.
func (h *HTMLReporter) Add(r *Record) error {
	h.totals.Add(r)
	cells := row(r)
	verdict := ""
	if r.Verification != nil {
		verdict = r.Verification.Verdict
	}
	fmt.Fprintf(h.buf, `<tr data-status="%s" data-verdict="%s">`, html.EscapeString(r.Status), html.EscapeString(verdict))
	for i, c := range cells {
		if i == 1 || i == 6 { // registry, index: in the repository and digest columns' titles
			continue
		}
		fmt.Fprintf(h.buf, "<td>%s</td>", html.EscapeString(clean(c)))
	}
	_, err := h.buf.WriteString("</tr>\n")
	return err
}

// Close writes the page and removes the temporary file.
func (h *HTMLReporter) Close() error {
	defer os.Remove(h.rows.Name())
	defer h.rows.Close()
	if err := h.buf.Flush(); err != nil {
		return err
	}
	if _, err := h.rows.Seek(0, io.SeekStart); err != nil {
		return err
	}
	w := bufio.NewWriter(h.w)
	t := h.totals
	esc := html.EscapeString
	fmt.Fprintf(w, htmlHead, esc(h.title), esc(h.title))
	fmt.Fprintf(w, `<section id="totals"><h2>Totals</h2><table class="totals"><tr><th>artifacts</th><th>signed</th><th>unsigned</th><th>unreadable</th><th>orphaned signatures</th><th>skipped tags</th></tr>`+
		`<tr><td id="t-artifacts">%d</td><td id="t-signed">%d</td><td id="t-unsigned">%d</td><td id="t-errors">%d</td><td id="t-orphans">%d</td><td id="t-skipped">%d</td></tr></table>`,
		t.Artifacts, t.Signed, t.Unsigned, t.Errors, t.Orphans, t.Skipped)
	fmt.Fprint(w, `<h3>Per verdict</h3><table class="totals" id="verdicts"><tr><th>verdict</th><th>artifacts</th></tr>`)
	for _, k := range sortedKeys(t.Verdicts) {
		fmt.Fprintf(w, `<tr><td>%s</td><td>%d</td></tr>`, esc(k), t.Verdicts[k])
	}
	fmt.Fprint(w, `</table><h3>Per repository</h3><table class="totals" id="repositories"><tr><th>repository</th><th>artifacts</th><th>signed</th><th>unsigned</th><th>verified</th><th>failed</th><th>unreadable</th><th>orphans</th></tr>`)
	for _, k := range sortedKeys(t.Repositories) {
		r := t.Repositories[k]
		fmt.Fprintf(w, `<tr><td>%s</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td><td>%d</td></tr>`,
			esc(clean(k)), r.Artifacts, r.Signed, r.Unsigned, r.Verified, r.Failed, r.Errors, r.Orphans)
	}
	fmt.Fprint(w, `</table><h3>Per signer</h3><table class="totals" id="signers"><tr><th>signer</th><th>artifacts</th></tr>`)
	for _, k := range sortedKeys(t.Signers) {
		fmt.Fprintf(w, `<tr><td>%s</td><td>%d</td></tr>`, esc(clean(k)), t.Signers[k])
	}
	fmt.Fprint(w, `</table><p class="note">Docker Content Trust and the Simple Signing lookaside are not visible from a registry: not determinable.</p></section>`)
	fmt.Fprint(w, htmlFilter)
	fmt.Fprint(w, `<table id="records"><thead><tr>`)
	for i, c := range csvHeader {
		if i == 1 || i == 6 {
			continue
		}
		fmt.Fprintf(w, "<th>%s</th>", esc(c))
	}
	fmt.Fprint(w, "</tr></thead><tbody>\n")
	if _, err := io.Copy(w, h.rows); err != nil {
		return err
	}
	fmt.Fprint(w, "</tbody></table>\n"+htmlScript+"</body></html>\n")
	return w.Flush()
}

const htmlHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>%s</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;font-size:13px;vertical-align:top}
th{background:#eee}
#records td:nth-child(3){font-family:monospace;font-size:11px}
tr[data-status="unsigned"] td:nth-child(6){color:#a60}
tr[data-status="error"] td:nth-child(6),tr[data-verdict="failed"] td:nth-child(9){color:#b00;font-weight:bold}
tr[data-verdict="verified"] td:nth-child(9){color:#070;font-weight:bold}
.note{color:#555;font-size:12px}
#filter{margin:1em 0}
</style></head><body>
<h1>%s</h1>
`

const htmlFilter = `<section id="filter"><h2>Artifacts</h2>
<label>Filter <input id="q" type="search" placeholder="text in any column"></label>
<label>Verdict <select id="verdict"><option value="">any</option><option>verified</option><option>failed</option><option>not-verifiable</option><option>skipped</option></select></label>
<label>Status <select id="status"><option value="">any</option><option>signed</option><option>unsigned</option><option>error</option><option>orphaned</option><option>not-scanned</option></select></label>
<span id="shown"></span></section>
`

const htmlScript = `<script>
(function(){
var q=document.getElementById("q"),v=document.getElementById("verdict"),s=document.getElementById("status"),shown=document.getElementById("shown");
var rows=Array.prototype.slice.call(document.querySelectorAll("#records tbody tr"));
function apply(){
 var text=q.value.toLowerCase(),n=0;
 rows.forEach(function(r){
  var ok=(!text||r.textContent.toLowerCase().indexOf(text)>=0)&&(!v.value||r.getAttribute("data-verdict")===v.value)&&(!s.value||r.getAttribute("data-status")===s.value);
  r.hidden=!ok; if(ok)n++;
 });
 shown.textContent=n+" of "+rows.length+" shown";
 document.body.setAttribute("data-shown",String(n));
}
function fromHash(){
 var h=location.hash.replace(/^#/,"");
 h.split("&").forEach(function(kv){
  var i=kv.indexOf("=");if(i<0)return;
  var k=kv.slice(0,i),val=kv.slice(i+1).replace(/\+/g," ");
  try{val=decodeURIComponent(val);}catch(e){} // a malformed escape (a hand-edited link) is taken as written
  if(k==="q")q.value=val;if(k==="verdict")v.value=val;if(k==="status")s.value=val;
 });
}
q.addEventListener("input",apply);v.addEventListener("change",apply);s.addEventListener("change",apply);
window.addEventListener("hashchange",function(){fromHash();apply();});
fromHash();apply();
})();
</script>
`
