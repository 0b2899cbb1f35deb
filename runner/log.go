package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"unicode/utf8"
)

// DefaultLogCap is the default number of bytes of a step's log kept on disk
// (Config.LogCap): its first half and its last half.
const DefaultLogCap = 16 << 20

// stepLog is the sink at the end of a step's output chain (container output
// -> optional filters such as secret masking -> stepLog). It keeps:
//
//   - the step's log file <logs>/<run>/<index>.log, at most about LogCap
//     bytes: the first headCap bytes go straight to it, everything after
//     into a ring file <index>.log.tail holding the newest tailCap bytes;
//     Close appends the ring to the log file after a marker that says how
//     many bytes of the middle were dropped;
//   - the last outputCap bytes in memory, for the run record's output;
//
// and calls notify after every write so that log followers wake up.
// Memory use is bounded by outputCap whatever the step prints. Write never
// fails towards the container stream: a full disk must not kill the step.
// Write and Close are called by one goroutine; readAt by any number.
type stepLog struct {
	path    string
	headCap int64
	tailCap int64
	notify  func()

	mu       sync.RWMutex
	f        *os.File // the log file (head); nil after Close
	ring     *os.File // tail ring, created when output passes headCap
	written  int64    // bytes received (the logical length of the output)
	headLast byte     // last byte of the head, for the marker's line break
	marker   int64    // length of the marker in the closed file
	closed   bool
	err      error // first write error
	recent   tailBuffer
}

// StepLogPath returns the log file of step index of run under logsDir.
// index is the step's position in the run record's result.steps; skipped
// steps have no file.
func StepLogPath(logsDir, runID string, index int) string {
	return filepath.Join(logsDir, runID, strconv.Itoa(index)+".log")
}

// ringPath is the tail ring of the log file at path while its step runs.
func ringPath(path string) string { return path + ".tail" }

// newStepLog creates (truncating) the log file at path. logCap is split in
// a head of logCap/2 bytes and a tail of the rest; outputCap is the size of
// the in-memory tail for the run record.
func newStepLog(path string, logCap int64, outputCap int, notify func()) (*stepLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if notify == nil {
		notify = func() {}
	}
	head := logCap / 2
	return &stepLog{
		path: path, headCap: head, tailCap: logCap - head, notify: notify,
		f: f, recent: tailBuffer{ring: make([]byte, outputCap)},
	}, nil
}

// Write stores p and wakes followers. It always reports success; the first
// storage error is kept for Close.
func (l *stepLog) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	l.mu.Lock()
	if l.closed {
		// Output of a step that did not stop in time, copied after its
		// result was taken: nowhere to go.
		l.mu.Unlock()
		return len(p), nil
	}
	l.recent.Write(p)
	rest := p
	if l.written < l.headCap {
		k := min(int64(len(rest)), l.headCap-l.written)
		l.keep(l.f.Write(rest[:k]))
		l.headLast = rest[k-1]
		l.written += k
		rest = rest[k:]
	}
	if len(rest) > 0 {
		l.writeRing(rest)
	}
	l.mu.Unlock()
	l.notify()
	return len(p), nil
}

// writeRing stores p at the logical end of the output in the ring file.
// Bytes that would be overwritten within the same write are skipped.
func (l *stepLog) writeRing(p []byte) {
	if l.ring == nil && l.err == nil {
		r, err := createRing(ringPath(l.path), l.headCap, l.tailCap)
		l.keep(0, err)
		l.ring = r
	}
	if int64(len(p)) > l.tailCap {
		l.written += int64(len(p)) - l.tailCap
		p = p[int64(len(p))-l.tailCap:]
	}
	if l.ring != nil {
		pos := (l.written - l.headCap) % l.tailCap
		k := min(int64(len(p)), l.tailCap-pos)
		l.keep(l.ring.WriteAt(p[:k], ringHeader+pos))
		if int64(len(p)) > k {
			l.keep(l.ring.WriteAt(p[k:], ringHeader))
		}
	}
	l.written += int64(len(p))
	if l.ring != nil {
		l.keep(0, writeRingLength(l.ring, l.written))
	}
}

func (l *stepLog) keep(_ int, err error) {
	if err != nil && l.err == nil {
		l.err = err
	}
}

// Close folds the ring into the log file (after the dropped-bytes marker)
// and closes the files. It returns the first storage error of the step.
func (l *stepLog) Close() error {
	l.mu.Lock()
	defer l.notify()
	defer l.mu.Unlock()
	if l.closed {
		return l.err
	}
	l.closed = true
	if l.ring != nil {
		m, err := foldRing(l.f, l.ring, l.headLast)
		l.keep(0, err)
		l.marker = m
		l.keep(0, l.ring.Close())
		l.keep(0, os.Remove(ringPath(l.path)))
		l.ring = nil
	}
	l.keep(0, l.f.Close())
	l.f = nil
	return l.err
}

// Tail returns the last outputCap bytes of the output for the run record,
// with a note when earlier output is not in it. Once the log is closed,
// Tail frees that memory (the sink stays readable for followers until the
// run ends): later calls return "".
func (l *stepLog) Tail() string { return l.TailWithin(len(l.recent.ring)) }

// TailWithin is Tail cut to the last n bytes when n is less than outputCap:
// the run's output budget is spent (see outputBudget), and the note then
// says so.
func (l *stepLog) TailWithin(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.recent.within(n)
	if l.closed {
		l.recent = tailBuffer{}
	}
	return s
}

// readAt reads the output at logical offset off (bytes since the step
// started) into p. gap > 0 means the bytes [off, off+gap) were dropped by
// the cap before this reader got them: the caller skips them. end means the
// step's log is closed and off is at its end. n == 0, gap == 0 and !end
// mean there is nothing more yet.
func (l *stepLog) readAt(p []byte, off int64) (n int, gap int64, end bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	headLen := min(l.written, l.headCap)
	tailStart := max(l.headCap, l.written-l.tailCap)
	switch {
	case off >= l.written:
		return 0, 0, l.closed, nil
	case off < headLen:
		n, err = l.pread(p[:min(int64(len(p)), headLen-off)], off)
		return n, 0, false, err
	case off < tailStart:
		return 0, tailStart - off, false, nil
	case l.closed:
		n, err = l.pread(p[:min(int64(len(p)), l.written-off)], headLen+l.marker+off-tailStart)
		return n, 0, false, err
	case l.ring == nil:
		return 0, 0, false, fmt.Errorf("step log %s: %w", l.path, l.err)
	}
	pos := (off - l.headCap) % l.tailCap
	k := min(int64(len(p)), l.written-off, l.tailCap-pos)
	n, err = l.ring.ReadAt(p[:k], ringHeader+pos)
	return n, 0, false, err
}

// pread reads the log file at off: through the open file while the step
// runs, by opening it once closed.
func (l *stepLog) pread(p []byte, off int64) (int, error) {
	if l.f != nil {
		n, err := l.f.ReadAt(p, off)
		if n == len(p) {
			err = nil
		}
		return n, err
	}
	return preadPath(l.path, p, off)
}

func preadPath(path string, p []byte, off int64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := f.ReadAt(p, off)
	if n == len(p) {
		err = nil
	}
	return n, err
}

// tailBuffer keeps the last len(ring) bytes written to it.
type tailBuffer struct {
	ring    []byte // circular buffer
	pos     int    // next write position in ring
	written int64
}

func (t *tailBuffer) Write(p []byte) {
	t.written += int64(len(p))
	if len(t.ring) == 0 {
		return
	}
	if len(p) > len(t.ring) {
		p = p[len(p)-len(t.ring):]
	}
	c := copy(t.ring[t.pos:], p)
	copy(t.ring, p[c:])
	t.pos = (t.pos + len(p)) % len(t.ring)
}

// within returns the kept bytes like String, or only their last n bytes
// (from a rune start) with a note that the run's output budget is spent,
// when n is less than the ring.
func (t *tailBuffer) within(n int) string {
	if n >= len(t.ring) || t.written <= int64(n) {
		return t.String()
	}
	kept := t.kept()
	cut := len(kept) - n
	for cut < len(kept) && !utf8.RuneStart(kept[cut]) {
		cut++
	}
	return budgetNote(t.written-int64(len(kept)-cut)) + kept[cut:]
}

// String returns the kept bytes, with a marker when the start was cut.
func (t *tailBuffer) String() string {
	kept := t.kept()
	if dropped := t.written - int64(len(kept)); dropped > 0 {
		return fmt.Sprintf("[... %d bytes of earlier output omitted; the full log is at /logs ...]\n%s", dropped, kept)
	}
	return kept
}

// kept returns the bytes in the ring, oldest first.
func (t *tailBuffer) kept() string {
	if t.written <= int64(len(t.ring)) {
		return string(t.ring[:t.written])
	}
	return string(t.ring[t.pos:]) + string(t.ring[:t.pos])
}
