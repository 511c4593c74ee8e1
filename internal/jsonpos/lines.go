package jsonpos

import (
	"strconv"
	"unicode/utf8"
)

// checkpointEvery is the distance in bytes between two rune-count
// checkpoints of a [Lines]: a position costs at most this many bytes of
// counting, whatever the length of its line.
const checkpointEvery = 128

// Lines converts byte offsets of a document to 1-based lines and columns.
// Columns count characters (Unicode code points) from the start of the
// line, as editors do; an invalid UTF-8 byte counts as one character, as
// utf8.RuneCount counts it.
//
// Building it reads the document once; each [Lines.Position] then costs a
// binary search and at most checkpointEvery bytes of counting, so locating
// every value of a document is linear in its size even when it is one
// line (minified JSON), where counting from the start of the line each
// time would be quadratic.
type Lines struct {
	data []byte
	// starts holds the offset of the first byte of every line.
	starts []int
	// runes[k] is the number of characters that start before the first
	// character boundary at or after byte k*checkpointEvery, and skip[k]
	// is how far after k*checkpointEvery that boundary is (less than
	// utf8.UTFMax).
	runes []int
	skip  []uint8
}

// NewLines indexes data. It keeps data, which must not change.
func NewLines(data []byte) *Lines {
	l := &Lines{
		data:   data,
		starts: []int{0},
		runes:  make([]int, 0, len(data)/checkpointEvery+1),
		skip:   make([]uint8, 0, len(data)/checkpointEvery+1),
	}
	count := 0
	for off := 0; off < len(data); {
		c := data[off]
		size := 1
		if c >= utf8.RuneSelf {
			_, size = utf8.DecodeRune(data[off:])
		} else if c == '\n' {
			l.starts = append(l.starts, off+1)
		}
		// Record a checkpoint for every block boundary this character
		// crosses or starts at.
		for len(l.runes)*checkpointEvery <= off {
			l.runes = append(l.runes, count)
			l.skip = append(l.skip, uint8(off-(len(l.runes)-1)*checkpointEvery))
		}
		count++
		off += size
	}
	return l
}

// runesBefore returns the number of characters before offset off, which is
// a character boundary of data or len(data).
func (l *Lines) runesBefore(off int) int {
	k := off / checkpointEvery
	if k >= len(l.runes) {
		k = len(l.runes) - 1
	}
	// A boundary before the checkpoint's boundary can only be in the
	// previous block (off is not a boundary, or is the end).
	for k >= 0 && k*checkpointEvery+int(l.skip[k]) > off {
		k--
	}
	if k < 0 {
		return runeCount(l.data[:off])
	}
	b := k*checkpointEvery + int(l.skip[k])
	return l.runes[k] + runeCount(l.data[b:off])
}

// Position returns the 1-based line and column of byte offset off (an
// offset past the end is read as the end).
func (l *Lines) Position(off int) (line, col int) {
	if off > len(l.data) {
		off = len(l.data)
	}
	if off < 0 {
		off = 0
	}
	// The last line that starts at or before off.
	lo, hi := 0, len(l.starts)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if l.starts[mid] <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo + 1, l.runesBefore(off) - l.runesBefore(l.starts[lo]) + 1
}

// runeCount is utf8.RuneCount (an invalid or incomplete sequence counts as
// one character per byte), written out because utf8.RuneCount may copy its
// argument into a string.
func runeCount(p []byte) int {
	n := 0
	for i := 0; i < len(p); n++ {
		if p[i] < utf8.RuneSelf {
			i++
			continue
		}
		_, size := utf8.DecodeRune(p[i:])
		i += size
	}
	return n
}

// InString maps a byte offset in the decoded value of the JSON string
// literal at off (its opening quote) to the offset in the document of the
// character that encodes it, so that a problem inside a string (one clause
// of an identity) is positioned on that clause.
func (l *Lines) InString(off, target int) int {
	data := l.data
	if off >= len(data) || data[off] != '"' {
		return off
	}
	i, decoded := off+1, 0
	for i < len(data) && data[i] != '"' && decoded < target {
		if data[i] != '\\' || i+1 >= len(data) {
			decoded++
			i++
			continue
		}
		if data[i+1] != 'u' || i+6 > len(data) {
			decoded++
			i += 2
			continue
		}
		r, err := strconv.ParseUint(string(data[i+2:i+6]), 16, 32)
		i += 6
		switch {
		case err != nil:
			decoded++
		case r >= 0xD800 && r < 0xDC00 && i+6 <= len(data) && data[i] == '\\' && data[i+1] == 'u':
			decoded += 4 // a surrogate pair encodes one 4-byte character
			i += 6
		case r >= 0xD800 && r < 0xE000:
			decoded += 3 // U+FFFD
		default:
			decoded += utf8.RuneLen(rune(r))
		}
	}
	return i
}
