package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/kod-forge/kod/runner"
)

// Window sizes of stepLines: a page opens a step with its last
// defaultWindow lines, so a step of any length opens at once; "load
// earlier" asks for the defaultWindow before, at most maxWindow at once.
const (
	defaultWindow = 1000
	maxWindow     = 5000
	// maxLineKept is the most bytes of one line a window carries; the
	// rest is cut (the raw download has it whole).
	maxLineKept = 64 << 10
)

// segment is a piece of a line as the terminal received it: CR means a
// lone "\r" ended it, so the next segment is written over it. A numbered
// line is its CR segments and one last segment.
type segment struct {
	T  string `json:"t"`
	CR bool   `json:"cr,omitempty"`
}

// logLine is one numbered line of a step's output and where it starts.
type logLine struct {
	num   int
	start int64
	segs  []segment
}

// lineWindow is stepLines's answer.
type lineWindow struct {
	First    int       `json:"first"`    // number of the first line (1-based); 0 if none
	Start    int64     `json:"start"`    // offset of the first line in the step's output
	End      int64     `json:"end"`      // offset after the last line sent
	Total    int       `json:"total"`    // lines numbered by the read (up to End, or the window's end)
	Complete bool      `json:"complete"` // the step ended: End is the end of its output
	More     bool      `json:"more"`     // lines follow the window before its end (line mode)
	Segments []segment `json:"segments"`
	Starts   []int64   `json:"starts"` // offset of each line of the window
}

// errStop ends a log read early.
var errStop = errors.New("stop")

// stepLines answers GET /ui/repos/{name}/runs/{id}/steps/{step}/lines
// with a window of a step's log lines as JSON: by default the last 1,000
// lines; ?before=OFFSET the lines starting before that offset (load
// earlier); ?line=N a window holding line N (deep links), ?after=OFFSET
// the lines from that offset on (load later); ?n= the number
// of lines (at most 5,000). A running step's unfinished last line is left
// to the live stream, which the page resumes at End.
func (s *Server) stepLines(w http.ResponseWriter, r *http.Request, _ *session) error {
	run, err := s.loadRun(r)
	if err != nil {
		return err
	}
	step, err := strconv.Atoi(r.PathValue("step"))
	if err != nil || step < 0 {
		return errNotFound
	}
	q := r.URL.Query()
	n := defaultWindow
	if v, err := strconv.Atoi(q.Get("n")); err == nil && v > 0 {
		n = min(v, maxWindow)
	}
	before := int64(-1)
	if v, err := strconv.ParseInt(q.Get("before"), 10, 64); err == nil && v >= 0 {
		before = v
	}
	line, after := 0, int64(-1)
	if v, err := strconv.Atoi(q.Get("line")); err == nil && v > 0 {
		line = v
	}
	if v, err := strconv.ParseInt(q.Get("after"), 10, 64); err == nil && v >= 0 {
		after = v
	}
	// Two reads: the first only numbers lines and finds where the window
	// starts and ends (no text kept, nothing allocated per line); the
	// second reads just the window's bytes and cuts them into segments.
	find := &lineScanner{n: n, before: before, firstWanted: max(1, line-n/4), after: after, byLine: line > 0 || after >= 0}
	if err := s.scanStep(r.Context(), run.ID, step, 0, find); err != nil {
		return err
	}
	win := find.window()
	if win.First > 0 {
		cut := &lineScanner{n: n, before: win.End, collect: true, pos: win.Start, lineStart: win.Start, number: win.First - 1}
		if err := s.scanStep(r.Context(), run.ID, step, win.Start, cut); err != nil {
			return err
		}
		got := cut.window()
		win.Segments, win.Starts = got.Segments, got.Starts
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	return json.NewEncoder(w).Encode(win)
}

// scanStep feeds the log of step (from byte offset from) to sc until sc
// has what it needs or the output available now ends.
func (s *Server) scanStep(ctx context.Context, runID string, step int, from int64, sc *lineScanner) error {
	err := s.Logs.StreamLogs(ctx, runID, runner.LogOptions{From: runner.CursorAt(runner.LogPosition{Step: step, Offset: from})}, func(ev *runner.LogEvent) error {
		if ev.Step != step {
			return errStop
		}
		switch ev.Kind {
		case runner.LogOutput:
			return sc.feed(ev.Data)
		case runner.LogDropped:
			return sc.dropped(ev.Dropped)
		case runner.LogStepEnded:
			sc.complete = true
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	return nil
}

// lineScanner cuts a step's output into numbered lines ("\n", "\r\n";
// a lone "\r" ends a segment of the line) and keeps only the window asked
// for, so memory is bounded by the window whatever the log's size.
type lineScanner struct {
	n           int
	before      int64 // keep lines starting before this offset; -1: all
	firstWanted int   // line mode: the first line to keep...
	after       int64 // ...or the first line starting at or after this offset
	byLine      bool
	collect     bool // keep the text (else only count lines and offsets)
	complete    bool // the step ended

	pos       int64 // offset of the next byte
	lineStart int64 // offset of the current line's first byte
	segs      []segment
	seg       []byte
	size      int  // bytes kept of the current line
	pendCR    bool // the last byte was "\r": "\r\n" or a lone "\r"?
	number    int  // lines ended so far
	ring      []logLine
	end       int64 // set when reading stopped early: where the window ends
	stopped   bool
}

func (l *lineScanner) feed(p []byte) error {
	for len(p) > 0 {
		if l.pendCR {
			l.pendCR = false
			if p[0] == '\n' { // "\r\n" ends the line
				l.pos++
				p = p[1:]
				if l.endLine() {
					return errStop
				}
				continue
			}
			l.endSegment(true) // a lone "\r": the next segment writes over this one
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			l.keep(p)
			return nil
		}
		l.keep(p[:i])
		l.pos++
		if p[i] == '\r' {
			l.pendCR = true
			p = p[i+1:]
			continue
		}
		p = p[i+1:]
		if l.endLine() {
			return errStop
		}
	}
	return nil
}

// keep adds b to the current segment, up to maxLineKept bytes a line.
func (l *lineScanner) keep(b []byte) {
	l.pos += int64(len(b))
	if !l.collect {
		return
	}
	if room := maxLineKept - l.size; room > 0 {
		b = b[:min(len(b), room)]
		l.seg = append(l.seg, b...)
		l.size += len(b)
	}
}

func (l *lineScanner) endSegment(cr bool) {
	if !l.collect {
		return
	}
	l.segs = append(l.segs, segment{T: string(l.seg), CR: cr})
	l.seg = l.seg[:0]
}

// dropped records that the log cap cut n bytes here: what is held of a
// line ends, and a note line stands for the gap.
func (l *lineScanner) dropped(n int64) error {
	if l.pendCR || l.pos > l.lineStart {
		l.pendCR = false
		if l.endLine() {
			return errStop
		}
	}
	if l.collect {
		note := runner.DropNote(n)
		l.seg = append(l.seg, note[:len(note)-1]...)
	}
	l.pos += n
	if l.endLine() {
		return errStop
	}
	return nil
}

// endLine closes the current line at l.pos (number it, keep it if
// wanted) and reports whether the window is full and reading can stop.
func (l *lineScanner) endLine() bool {
	l.endSegment(false)
	line := logLine{num: l.number + 1, start: l.lineStart, segs: l.segs}
	l.segs, l.size = nil, 0
	if l.before >= 0 && line.start >= l.before {
		l.stopped, l.end = true, l.before
		return true
	}
	l.lineStart = l.pos
	l.number++
	switch {
	case l.byLine && (l.number < l.firstWanted || line.start < l.after):
		return false
	case l.byLine && len(l.ring) == l.n:
		l.stopped, l.end = true, line.start
		return true
	}
	l.ring = append(l.ring, line)
	if !l.byLine && len(l.ring) >= 2*l.n {
		l.ring = append(l.ring[:0], l.ring[len(l.ring)-l.n:]...) // amortised O(1) per line
	}
	return false
}

func (l *lineScanner) window() *lineWindow {
	end := l.end
	if !l.stopped {
		if l.complete && (l.pendCR || l.pos > l.lineStart) {
			if l.pendCR {
				l.endSegment(true)
				l.pendCR = false
			}
			l.endLine() // the step's last line, without a terminator
		}
		end = l.lineStart // a running step's unfinished line is the live stream's
		if l.complete {
			end = l.pos
		}
	}
	lines := l.ring
	if len(lines) > l.n {
		lines = lines[len(lines)-l.n:]
	}
	w := &lineWindow{End: end, Start: end, Total: l.number, Complete: l.complete && !l.stopped, More: l.byLine && l.stopped, Segments: []segment{}, Starts: []int64{}}
	if len(lines) == 0 {
		return w
	}
	w.First = lines[0].num
	w.Start = lines[0].start
	for _, ln := range lines {
		w.Segments = append(w.Segments, ln.segs...)
		w.Starts = append(w.Starts, ln.start)
	}
	return w
}
