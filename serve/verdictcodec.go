package serve

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/keyward/keyward/policy"
	"github.com/keyward/keyward/verify"
)

// The cache keeps a verdict as about 140 bytes instead of the ~3 KiB
// of heap its objects take (issue 12: 100,000 cached verdicts in under
// 200 MiB of RSS). A kept verdict is an encoded record: every field of
// the verdict, in a fixed order, as varints and flags, with its strings
// held apart. The strings of the verdicts of one signer and policy are
// the same (certificate subjects, thumbprints and serial numbers, check
// messages, statement, media types), so they are kept once, in a
// reference-counted table shared by the cache's records; a record holds
// the indexes of the distinct strings it uses. What differs from one
// artifact to the next is mostly its digest: a string that is a sha256
// digest is kept in the record as its 32 bytes, and a string that contains
// the artifact's digest (the reference, the targetArtifact check's
// message) is kept in the table with the digest cut out, so that the
// verdicts of one repository share it too. A hit decodes the record into
// new objects, which the caller owns.
//
// Record layout: uvarint n, then the n table indexes of the record's
// distinct strings (its slots), then the body. A string in the body is a
// uvarint tag, slot<<3 | kind (len<<3 | kind for an inline string, kind
// alone for the others), and, for strSHA256, 32 bytes:
const (
	strEmpty          = iota // ""
	strArtifact              // the artifact's digest (Artifact.Digest)
	strSHA256                // "sha256:" + hex of the 32 bytes that follow
	strSlot                  // the string of the slot
	strTemplate              // the string of the slot, each NUL replaced by the artifact digest's hex
	strInline                // the len bytes that follow (tag: len<<3 | kind), in a segment
	strInlineTemplate        // the same, each NUL replaced by the artifact digest's hex
)

// A signature's checks and its certificate chain are each encoded apart,
// as a segment whose strings are inline, and the segment is kept as one
// string of the table, in a slot: the checks and the chain of one
// signer's verdicts are then held once, and a record names each in a
// byte or two.

// Errors of a record that does not decode: the cache treats it as a miss.
var errRecord = errors.New("keyward serve: a cached verdict record does not decode")

// Estimated heap of a string in the table beyond its bytes: its map slot
// (key, index, control byte, at the map's load factor, twice that while
// the map grows), its slots in strs, refs and free. The rounding of its
// bytes to an allocation size class (an eighth at most) is counted apart.
const tableStringOverhead = 96

// tableStringSize estimates the heap a string of the table takes.
func tableStringSize(s string) int64 {
	return int64(len(s))*9/8 + tableStringOverhead
}

// stringTable holds the strings of the cache's records once each, counted
// by the records that use them; a string no record uses is dropped and its
// index reused. It is not safe for concurrent use: the cache's mutex
// guards it.
type stringTable struct {
	index map[string]uint32
	strs  []string
	refs  []uint32
	free  []uint32
	bytes int64 // estimated heap of the strings held
}

func newStringTable() *stringTable { return &stringTable{index: map[string]uint32{}} }

// acquire counts one more use of s and returns its index.
func (t *stringTable) acquire(s string) uint32 {
	if i, ok := t.index[s]; ok {
		t.refs[i]++
		return i
	}
	s = strings.Clone(s) // not a substring of a larger string kept alive
	var i uint32
	if n := len(t.free); n > 0 {
		i = t.free[n-1]
		t.free = t.free[:n-1]
		t.strs[i], t.refs[i] = s, 1
	} else {
		i = uint32(len(t.strs))
		t.strs = append(t.strs, s)
		t.refs = append(t.refs, 1)
	}
	t.index[s] = i
	t.bytes += tableStringSize(s)
	return i
}

// release counts one use of index i less.
func (t *stringTable) release(i uint32) {
	if int(i) >= len(t.refs) || t.refs[i] == 0 {
		return // never: the cache releases what it acquired
	}
	t.refs[i]--
	if t.refs[i] > 0 {
		return
	}
	s := t.strs[i]
	delete(t.index, s)
	t.strs[i] = ""
	t.free = append(t.free, i)
	t.bytes -= tableStringSize(s)
}

// get returns the string of index i.
func (t *stringTable) get(i uint32) (string, bool) {
	if int(i) >= len(t.strs) || t.refs[i] == 0 {
		return "", false
	}
	return t.strs[i], true
}

// verdictEncoder builds the body of a record and its slots.
type verdictEncoder struct {
	buf     []byte
	hex     string // the artifact digest's hex ("" when it is not sha256)
	dgst    string // the artifact digest
	slots   []string
	slotOf  map[string]int
	inline  bool // a segment: strings inline, no slots
	scratch [32]byte
}

// encodeVerdict returns the body of r's record and the strings of its
// slots, in slot order (to be acquired in the table).
func encodeVerdict(r *verify.ReferenceResult) (body []byte, slots []string) {
	e := &verdictEncoder{buf: make([]byte, 0, 256), slotOf: map[string]int{}}
	// The body starts with the artifact's digest, which the strings after
	// it may name (strArtifact, strTemplate).
	var dgst string
	if r.Artifact != nil {
		dgst = string(r.Artifact.Digest)
	}
	e.str(dgst)
	e.dgst = dgst
	e.hex, _ = sha256Hex(dgst)
	e.result(r)
	return e.buf, e.slots
}

// sha256Hex returns the hex of a "sha256:" digest in lowercase hex.
func sha256Hex(s string) (string, bool) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return h, true
}

func (e *verdictEncoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *verdictEncoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }

func (e *verdictEncoder) flag(b bool) {
	if b {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
}

// length writes how long a slice or map is, 0 for nil: nil and empty
// are told apart, so the copy is the verdict exactly.
func (e *verdictEncoder) length(n int, isNil bool) {
	if isNil {
		e.uvarint(0)
		return
	}
	e.uvarint(uint64(n) + 1)
}

// slot writes the tag of a string kept in a slot.
func (e *verdictEncoder) slot(kind uint64, s string) {
	i, ok := e.slotOf[s]
	if !ok {
		i = len(e.slots)
		e.slots = append(e.slots, s)
		e.slotOf[s] = i
	}
	e.uvarint(uint64(i)<<3 | kind)
}

func (e *verdictEncoder) str(s string) {
	switch {
	case s == "":
		e.buf = append(e.buf, strEmpty)
	case e.dgst != "" && s == e.dgst:
		e.buf = append(e.buf, strArtifact)
	case len(s) == len("sha256:")+64:
		if h, ok := sha256Hex(s); ok {
			hex.Decode(e.scratch[:], []byte(h))
			e.buf = append(e.buf, strSHA256)
			e.buf = append(e.buf, e.scratch[:]...)
			return
		}
		e.plain(s)
	default:
		e.plain(s)
	}
}

func (e *verdictEncoder) plain(s string) {
	// A string with a NUL of its own is kept as it is: in a template,
	// NUL marks where the digest goes.
	if e.hex != "" && strings.Contains(s, e.hex) && !strings.Contains(s, "\x00") {
		e.string(strTemplate, strInlineTemplate, strings.ReplaceAll(s, e.hex, "\x00"))
		return
	}
	e.string(strSlot, strInline, s)
}

// string writes s in a slot, or inline in a segment.
func (e *verdictEncoder) string(slotKind, inlineKind uint64, s string) {
	if !e.inline {
		e.slot(slotKind, s)
		return
	}
	e.uvarint(uint64(len(s))<<3 | inlineKind)
	e.buf = append(e.buf, s...)
}

// segment writes what fn encodes as a segment, kept in a slot.
func (e *verdictEncoder) segment(fn func(*verdictEncoder)) {
	sub := &verdictEncoder{hex: e.hex, dgst: e.dgst, inline: true}
	fn(sub)
	e.slot(strSlot, string(sub.buf))
}

func (e *verdictEncoder) strs(v []string) {
	e.length(len(v), v == nil)
	for _, s := range v {
		e.str(s)
	}
}

func (e *verdictEncoder) time(t time.Time) {
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
	switch loc := t.Location(); {
	case loc == time.UTC:
		e.buf = append(e.buf, 0)
	case loc == time.Local:
		e.buf = append(e.buf, 1)
	default:
		_, off := t.Zone()
		e.buf = append(e.buf, 2)
		e.varint(int64(off))
	}
}

func (e *verdictEncoder) descriptor(d *ocispec.Descriptor) {
	e.flag(d != nil)
	if d == nil {
		return
	}
	e.str(d.MediaType)
	e.str(string(d.Digest))
	e.varint(d.Size)
	e.strs(d.URLs)
	e.length(len(d.Annotations), d.Annotations == nil)
	keys := make([]string, 0, len(d.Annotations))
	for k := range d.Annotations {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		e.str(k)
		e.str(d.Annotations[k])
	}
	e.length(len(d.Data), d.Data == nil)
	e.buf = append(e.buf, d.Data...)
	e.flag(d.Platform != nil)
	if p := d.Platform; p != nil {
		e.str(p.Architecture)
		e.str(p.OS)
		e.str(p.OSVersion)
		e.strs(p.OSFeatures)
		e.str(p.Variant)
	}
	e.str(d.ArtifactType)
}

func (e *verdictEncoder) result(r *verify.ReferenceResult) {
	e.str(r.Version)
	e.str(r.Reference)
	e.str(r.Scope)
	e.str(r.Tag)
	e.descriptor(r.Artifact)
	e.str(r.Statement)
	e.str(string(r.Level))
	e.flag(r.Verified)
	e.flag(r.Skipped)
	e.length(len(r.Signatures), r.Signatures == nil)
	for _, s := range r.Signatures {
		e.signature(s)
	}
	e.flag(r.Error != nil)
	if r.Error != nil {
		e.str(string(r.Error.Kind))
		e.str(r.Error.Message)
	}
	e.varint(r.ElapsedMS)
}

// signature encodes a signature's result; its Err (not part of the JSON
// of a verdict, nor of what Redis shares) is not kept.
func (e *verdictEncoder) signature(s *verify.Result) {
	e.flag(s != nil)
	if s == nil {
		return
	}
	e.str(s.Signature)
	e.str(s.MediaType)
	e.str(s.Statement)
	e.str(string(s.Level))
	e.flag(s.Passed)
	e.str(string(s.FailedCheck))
	e.segment(func(e *verdictEncoder) {
		e.length(len(s.Checks), s.Checks == nil)
		for _, c := range s.Checks {
			e.str(string(c.Check))
			e.str(string(c.Action))
			e.str(string(c.Outcome))
			e.str(c.Message)
			e.str(c.Detail)
			e.flag(c.Inconclusive)
		}
	})
	e.flag(s.Signer != nil)
	if g := s.Signer; g != nil {
		e.str(g.Subject)
		e.str(g.Issuer)
		e.str(g.SigningScheme)
		e.str(g.EnvelopeType)
		e.str(g.SignatureAlgorithm)
		e.str(g.SigningAgent)
		e.time(g.SigningTime)
		e.flag(g.AuthenticSigningTime)
		e.flag(g.Expiry != nil)
		if g.Expiry != nil {
			e.time(*g.Expiry)
		}
		e.flag(g.Timestamp != nil)
		if ts := g.Timestamp; ts != nil {
			e.time(ts.Time)
			e.varint(int64(ts.Accuracy))
			e.str(ts.Authority)
		}
		e.str(g.VerificationPlugin)
		e.str(g.VerificationPluginMinVersion)
		e.segment(func(e *verdictEncoder) {
			e.length(len(g.Chain), g.Chain == nil)
			for _, c := range g.Chain {
				e.str(c.Subject)
				e.str(c.Issuer)
				e.str(c.SerialNumber)
				e.time(c.NotBefore)
				e.time(c.NotAfter)
				e.str(c.SHA256)
				e.str(c.SHA1)
			}
		})
		e.descriptor(g.TargetArtifact)
	}
}

// verdictDecoder reads the body of a record. A malformed body (never one
// encodeVerdict wrote) sets err; the values read after are zero.
type verdictDecoder struct {
	buf   string // substrings of a record or segment are taken without a copy
	slots []string
	dgst  string // the artifact digest, once read
	hex   string
	err   error
}

// decodeVerdict decodes the body of a record whose slots hold slots.
func decodeVerdict(body string, slots []string) (*verify.ReferenceResult, error) {
	d := &verdictDecoder{buf: body, slots: slots}
	d.dgst = d.str()
	d.hex, _ = sha256Hex(d.dgst)
	r := d.result()
	if d.err == nil && len(d.buf) != 0 {
		d.err = errRecord
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}

func (d *verdictDecoder) fail() { d.err = errRecord; d.buf = "" }

func (d *verdictDecoder) byte() byte {
	if len(d.buf) == 0 {
		d.fail()
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *verdictDecoder) uvarint() uint64 {
	v, n := uvarint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *verdictDecoder) varint() int64 {
	u, n := uvarint(d.buf)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.buf = d.buf[n:]
	v := int64(u >> 1) // zigzag, as binary.AppendVarint writes it
	if u&1 != 0 {
		v = ^v
	}
	return v
}

// uvarint is binary.Uvarint on a string: the value and the bytes read,
// 0 for too few bytes, less than 0 for an overflow.
func uvarint(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s); i++ {
		if i == binary.MaxVarintLen64 {
			return 0, -(i + 1)
		}
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

func (d *verdictDecoder) flag() bool { return d.byte() == 1 }

// length reads a length written by verdictEncoder.length: -1 for nil.
func (d *verdictDecoder) length() int {
	n := d.uvarint()
	if n > uint64(len(d.buf))+1 { // every element takes a byte at least
		d.fail()
		return -1
	}
	return int(n) - 1
}

func (d *verdictDecoder) slot(i uint64) string {
	if i >= uint64(len(d.slots)) {
		d.fail()
		return ""
	}
	return d.slots[i]
}

func (d *verdictDecoder) str() string {
	tag := d.uvarint()
	if tag>>3 != 0 && tag&7 != strSlot && tag&7 != strTemplate && tag&7 != strInline && tag&7 != strInlineTemplate {
		d.fail()
		return ""
	}
	switch tag & 7 {
	case strEmpty:
		return ""
	case strArtifact:
		if d.dgst == "" {
			d.fail()
		}
		return d.dgst
	case strSHA256:
		if len(d.buf) < 32 {
			d.fail()
			return ""
		}
		var raw [32]byte
		copy(raw[:], d.buf[:32])
		s := "sha256:" + hex.EncodeToString(raw[:])
		d.buf = d.buf[32:]
		return s
	case strSlot:
		return d.slot(tag >> 3)
	case strTemplate:
		t := d.slot(tag >> 3)
		if d.hex == "" {
			d.fail()
		}
		return strings.ReplaceAll(t, "\x00", d.hex)
	case strInline, strInlineTemplate:
		if tag>>3 > uint64(len(d.buf)) {
			d.fail()
			return ""
		}
		s := d.buf[:tag>>3]
		d.buf = d.buf[tag>>3:]
		if tag&7 == strInline {
			return s
		}
		if d.hex == "" {
			d.fail()
		}
		return strings.ReplaceAll(s, "\x00", d.hex)
	default:
		d.fail()
		return ""
	}
}

// segment decodes a segment with fn.
func (d *verdictDecoder) segment(fn func(*verdictDecoder)) {
	seg := d.str()
	if d.err != nil {
		return
	}
	sub := &verdictDecoder{buf: seg, dgst: d.dgst, hex: d.hex}
	fn(sub)
	if sub.err != nil || len(sub.buf) != 0 {
		d.fail()
	}
}

func (d *verdictDecoder) strs() []string {
	n := d.length()
	if n < 0 {
		return nil
	}
	v := make([]string, n)
	for i := range v {
		v[i] = d.str()
	}
	return v
}

func (d *verdictDecoder) time() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail()
	}
	t := time.Unix(sec, int64(nsec))
	switch d.byte() {
	case 0:
		return t.UTC()
	case 1:
		return t
	case 2:
		return t.In(time.FixedZone("", int(d.varint())))
	default:
		d.fail()
		return time.Time{}
	}
}

func (d *verdictDecoder) descriptor() *ocispec.Descriptor {
	if !d.flag() {
		return nil
	}
	var out ocispec.Descriptor
	out.MediaType = d.str()
	out.Digest = digest.Digest(d.str())
	out.Size = d.varint()
	out.URLs = d.strs()
	if n := d.length(); n >= 0 {
		out.Annotations = make(map[string]string, n)
		for range n {
			k := d.str()
			out.Annotations[k] = d.str()
		}
	}
	if n := d.length(); n >= 0 {
		if n > len(d.buf) {
			d.fail()
		} else {
			out.Data = []byte(d.buf[:n])
			d.buf = d.buf[n:]
		}
	}
	if d.flag() {
		out.Platform = &ocispec.Platform{Architecture: d.str(), OS: d.str(), OSVersion: d.str(), OSFeatures: d.strs(), Variant: d.str()}
	}
	out.ArtifactType = d.str()
	return &out
}

func (d *verdictDecoder) result() *verify.ReferenceResult {
	r := &verify.ReferenceResult{}
	r.Version = d.str()
	r.Reference = d.str()
	r.Scope = d.str()
	r.Tag = d.str()
	r.Artifact = d.descriptor()
	r.Statement = d.str()
	r.Level = policy.Level(d.str())
	r.Verified = d.flag()
	r.Skipped = d.flag()
	if n := d.length(); n >= 0 {
		r.Signatures = make([]*verify.Result, n)
		for i := range r.Signatures {
			r.Signatures[i] = d.signature()
		}
	}
	if d.flag() {
		r.Error = &verify.ReferenceError{Kind: verify.ArtifactErrorKind(d.str()), Message: d.str()}
	}
	r.ElapsedMS = d.varint()
	return r
}

func (d *verdictDecoder) signature() *verify.Result {
	if !d.flag() {
		return nil
	}
	s := &verify.Result{}
	s.Signature = d.str()
	s.MediaType = d.str()
	s.Statement = d.str()
	s.Level = policy.Level(d.str())
	s.Passed = d.flag()
	s.FailedCheck = verify.CheckName(d.str())
	d.segment(func(d *verdictDecoder) {
		if n := d.length(); n >= 0 {
			s.Checks = make([]verify.CheckResult, n)
			for i := range s.Checks {
				c := &s.Checks[i]
				c.Check = verify.CheckName(d.str())
				c.Action = policy.Action(d.str())
				c.Outcome = verify.Outcome(d.str())
				c.Message = d.str()
				c.Detail = d.str()
				c.Inconclusive = d.flag()
			}
		}
	})
	if !d.flag() {
		return s
	}
	g := &verify.Signer{}
	g.Subject = d.str()
	g.Issuer = d.str()
	g.SigningScheme = d.str()
	g.EnvelopeType = d.str()
	g.SignatureAlgorithm = d.str()
	g.SigningAgent = d.str()
	g.SigningTime = d.time()
	g.AuthenticSigningTime = d.flag()
	if d.flag() {
		t := d.time()
		g.Expiry = &t
	}
	if d.flag() {
		g.Timestamp = &verify.Timestamp{Time: d.time(), Accuracy: time.Duration(d.varint()), Authority: d.str()}
	}
	g.VerificationPlugin = d.str()
	g.VerificationPluginMinVersion = d.str()
	d.segment(func(d *verdictDecoder) {
		if n := d.length(); n >= 0 {
			g.Chain = make([]verify.Certificate, n)
			for i := range g.Chain {
				c := &g.Chain[i]
				c.Subject = d.str()
				c.Issuer = d.str()
				c.SerialNumber = d.str()
				c.NotBefore = d.time()
				c.NotAfter = d.time()
				c.SHA256 = d.str()
				c.SHA1 = d.str()
			}
		}
	})
	g.TargetArtifact = d.descriptor()
	s.Signer = g
	return s
}
