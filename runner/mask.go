package runner

import (
	"bytes"
	"encoding/binary"
	"io"
	"slices"
	"strings"
	"sync"
)

// MinMaskedLen is the shortest secret value that is masked, bytes. Shorter
// values (and shorter lines of multi-line values) are left alone: masking
// "1" or "yes" everywhere would shred logs while hiding nothing.
const MinMaskedLen = 4

// MaskText replaces every occurrence of a secret value.
const MaskText = "[secret]"

// masker finds secret values in text. It is immutable and safe for
// concurrent use; maskWriter adds the state of one stream.
type masker struct {
	pats [][]byte // longest first, so the longest match at a position wins
	// Every pattern is at least MinMaskedLen (4) bytes: candidates are found
	// in one pass by their first four bytes, through a 64 Kibit filter
	// (bloom) and then the exact table (byPrefix).
	bloom    [1 << 10]uint64
	byPrefix map[uint32][]int // first 4 bytes -> pattern indexes, longest first
	// Windows of window bytes are skipped Wu-Manber style: shift[b] is how
	// far the window may move when its last two bytes are b (0: a pattern
	// may start at the window's start, check it).
	window int
	shift  [1 << 16]uint8
}

func prefixHash(v uint32) uint32 { return (v * 0x9E3779B1) >> 16 }

// newMasker returns a masker for values, or nil if none is long enough.
// Each value is masked whole and, for multi-line values, line by line (a
// line printed on its own is masked too), ignoring "\r" line ends and the
// lines that carry too little of the secret to be worth hiding (see
// secretLine): `  },` of a pretty-printed JSON key must not mask every
// JSON document in the log.
func newMasker(values []string) *masker {
	var pats []string
	add := func(s string) {
		if len(s) >= MinMaskedLen && strings.TrimSpace(s) != "" && !slices.Contains(pats, s) {
			pats = append(pats, s)
		}
	}
	for _, v := range values {
		add(v)
		if strings.ContainsAny(v, "\r\n") {
			for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if secretLine(line) {
					add(strings.TrimSpace(line)) // however it is indented where printed
				}
			}
		}
	}
	if len(pats) == 0 {
		return nil
	}
	slices.SortFunc(pats, func(a, b string) int { return len(b) - len(a) })
	m := &masker{byPrefix: map[uint32][]int{}, window: min(len(pats[len(pats)-1]), 64)}
	for b := range m.shift {
		m.shift[b] = uint8(m.window - 1)
	}
	for i, p := range pats {
		for q := 1; q < m.window; q++ {
			b := uint16(p[q-1])<<8 | uint16(p[q])
			m.shift[b] = min(m.shift[b], uint8(m.window-1-q))
		}
		m.pats = append(m.pats, []byte(p))
		v := binary.LittleEndian.Uint32([]byte(p))
		h := prefixHash(v)
		m.bloom[h>>6] |= 1 << (h & 63)
		m.byPrefix[v] = append(m.byPrefix[v], i)
	}
	return m
}

// MinMaskedLineLen is the shortest line of a multi-line secret value that
// is masked on its own, bytes, not counting the spaces around it.
const MinMaskedLineLen = 8

// secretLine reports whether a line of a multi-line secret value is masked
// on its own: at least MinMaskedLineLen bytes without the surrounding
// spaces, of which at least 4 letters or digits and at least 4 different
// bytes. Lines of only punctuation and spaces (`    ]`, `  },`), short
// lines and runs of one character (`========`) are left alone; they
// reveal nothing and occur in unrelated output everywhere.
func secretLine(line string) bool {
	t := strings.TrimSpace(line)
	if len(t) < MinMaskedLineLen {
		return false
	}
	alnum := 0
	var seen [256]bool
	distinct := 0
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 {
			alnum++
		}
		if !seen[c] {
			seen[c] = true
			distinct++
		}
	}
	return alnum >= 4 && distinct >= 4
}

// String returns s with every secret value replaced by MaskText. A nil
// masker returns s unchanged.
func (m *masker) String(s string) string {
	if m == nil || s == "" {
		return s
	}
	var out bytes.Buffer
	src := []byte(s)
	m.mask(&out, src, true)
	return out.String()
}

// mask appends to out the masked form of every byte of src that can be
// decided now and returns how many bytes of src were consumed. Unless final,
// the rest is a tail that may be the start of a secret value, decided with
// the bytes that follow it; a match is also deferred while a longer value
// may start at or before it (a line of a multi-line value and the value
// itself), so the result never depends on how the stream was split.
func (m *masker) mask(out *bytes.Buffer, src []byte, final bool) int {
	pos := 0
	hold := -1 // start of the held tail; valid while >= pos
	holdFrom := func() int {
		if final {
			return len(src)
		}
		if hold < pos {
			hold = len(src) - m.heldTail(src[pos:])
		}
		return hold
	}
	for {
		at, pi := m.find(src, pos)
		if at < 0 || holdFrom() <= at {
			break
		}
		out.Write(src[pos:at])
		out.WriteString(MaskText)
		pos = at + len(m.pats[pi])
	}
	keep := max(holdFrom(), pos)
	out.Write(src[pos:keep])
	return keep
}

// find returns the first position at or after from where a whole pattern
// occurs, and the longest pattern there; -1 if none.
func (m *masker) find(src []byte, from int) (at, pattern int) {
	for i := from + m.window - 1; i < len(src); {
		if s := m.shift[uint16(src[i-1])<<8|uint16(src[i])]; s > 0 {
			i += int(s)
			continue
		}
		start := i - m.window + 1
		v := binary.LittleEndian.Uint32(src[start : start+4])
		if h := prefixHash(v); m.bloom[h>>6]&(1<<(h&63)) != 0 {
			for _, pi := range m.byPrefix[v] {
				if bytes.HasPrefix(src[start:], m.pats[pi]) {
					return start, pi
				}
			}
		}
		i++
	}
	return -1, -1
}

// heldTail returns the length of the longest suffix of tail that is a
// proper prefix of a secret value.
func (m *masker) heldTail(tail []byte) int {
	held := 0
	for _, p := range m.pats {
		start := max(len(tail)-(len(p)-1), 0)
		for q := start; q < len(tail)-held; {
			j := bytes.IndexByte(tail[q:len(tail)-held], p[0])
			if j < 0 {
				break
			}
			q += j
			if bytes.HasPrefix(p, tail[q:]) {
				held = len(tail) - q
				break
			}
			q++
		}
	}
	return held
}

// maskWriter masks a stream: a value split across writes (or across lines)
// is still found, because a tail that may start a value is held back until
// the next write or Flush decides it. Everything else passes through at
// once, so live output is delayed only while it looks like a secret's start.
type maskWriter struct {
	m     *masker
	w     io.Writer
	mu    sync.Mutex
	carry []byte       // held tail of earlier writes
	join  []byte       // carry + p, reused
	out   bytes.Buffer // masked output, reused
}

// newMaskWriter wraps w; with a nil masker it masks nothing but still
// satisfies the Flush contract.
func newMaskWriter(m *masker, w io.Writer) *maskWriter { return &maskWriter{m: m, w: w} }

// Write masks p and writes what can be decided to the underlying writer.
// It reports len(p) unless the underlying writer fails.
func (mw *maskWriter) Write(p []byte) (int, error) {
	if mw.m == nil {
		return mw.w.Write(p)
	}
	mw.mu.Lock()
	defer mw.mu.Unlock()
	src := p
	if len(mw.carry) > 0 {
		mw.join = append(append(mw.join[:0], mw.carry...), p...)
		src = mw.join
	}
	var out []byte
	var keep int
	if at, _ := mw.m.find(src, 0); at < 0 {
		// The common case, no value at all: pass the bytes through uncopied.
		keep = len(src) - mw.m.heldTail(src)
		out = src[:keep]
	} else {
		mw.out.Reset()
		keep = mw.m.mask(&mw.out, src, false)
		out = mw.out.Bytes()
	}
	if len(out) > 0 {
		if _, err := mw.w.Write(out); err != nil {
			return 0, err
		}
	}
	mw.carry = append(mw.carry[:0], src[keep:]...)
	if mw.out.Cap() > 1<<20 {
		mw.out = bytes.Buffer{} // do not keep a huge buffer after one huge write
	}
	return len(p), nil
}

// Flush writes the held tail: the stream ended, so it is not a secret
// value (only the start of one). Call it when the step's output ends.
func (mw *maskWriter) Flush() error {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if len(mw.carry) == 0 {
		return nil
	}
	_, err := mw.w.Write(mw.carry)
	mw.carry = mw.carry[:0]
	return err
}

// Close flushes; it does not close the underlying writer.
func (mw *maskWriter) Close() error { return mw.Flush() }

var _ io.WriteCloser = (*maskWriter)(nil)
