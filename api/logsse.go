package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// maxEventLine is the most bytes of one output line an SSE event carries;
// a longer line is sent as several events, all but the last with
// "partial": true.
const maxEventLine = 32 << 10

// serveEventStream serves a run's logs as Server-Sent Events, following
// the run until it ends:
//
//	event: step  data: {"index":0,"id":"ci.build","step":"build","workflow":"...","skipped":false}
//	event: line  data: {"index":0,"id":"ci.build","step":"build","line":"text"}
//	event: end   data: {"status":"completed","error":"..."}
//
// Steps running at once interleave their events; "index" (the step's
// position in result.steps) and "id" say which step each is of. A step
// that never ran has "skipped": true or "status": "cancelled", and
// "reason". A line event is one line of output without its terminator; a
// line ended by a lone "\r" (progress output) has "cr": true (a terminal
// would write the next line over it); "partial": true means the line
// continues in the step's next line event (lines over 32 KiB, or an
// unfinished line left alone for about a second); a line ends with an
// event without "partial", so a step whose output ends in an unfinished
// line sent in pieces gets a last line event with "line": "" at its end.
// "dropped": N marks where the step log cap cut N bytes. Invalid UTF-8 is
// replaced with U+FFFD. Every event has an id: a cursor (see
// parseEventID) whose first entry is the event's own step and the offset
// after it ("<step>:<offset>", "+" after a partial piece), or "end"; a
// sequential run's ids are that one entry. A client reconnecting with
// Last-Event-ID resumes after it (after a partial piece, the line is
// continued and ended), and one reconnecting after "end" gets 204, which
// tells EventSource to stop. Comments keep idle connections alive.
func (s *Server) serveEventStream(ctx context.Context, w http.ResponseWriter, r *http.Request, run *forge.Run, opts runner.LogOptions) error {
	var (
		resume  runner.LogCursor
		partial map[int]bool
	)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		cur, part, done, ok := parseEventID(id)
		if !ok {
			return forge.Invalid("Invalid Last-Event-ID")
		}
		if done {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		if !cursorFits(run, cur) {
			return forge.Invalid("Invalid Last-Event-ID: the run has no such step")
		}
		resume, partial = cur, part
		opts.From = &resume
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	e := &sseLog{w: w, flusher: flusherOf(w), lastWrite: time.Now(), steps: map[int]*sseStep{}}
	if e.flusher != nil {
		e.flusher.Flush()
	}
	if opts.From != nil {
		e.below = resume.Below
		for _, p := range resume.At {
			st := e.stepOf(&runner.LogEvent{Step: p.Step})
			st.lines.pos, st.lines.start = p.Offset, p.Offset
			st.lines.open = partial[p.Step] // the client holds the start of a line
		}
	}
	err := s.Runner.StreamLogs(ctx, run.ID, opts, e.emit)
	if err != nil {
		return s.streamEnded(r, err, true)
	}
	final, err := s.Store.GetRun(context.WithoutCancel(ctx), run.ID)
	if err != nil {
		return s.streamEnded(r, err, true)
	}
	end := map[string]string{"status": string(final.Status)}
	if final.Error != "" {
		end["error"] = final.Error
	}
	return s.streamEnded(r, e.event("end", "end", end), true)
}

// cursorFits reports whether every step cur names exists in the record
// of run, when the run is over (a live run's record may not list a
// service that just started; its stream ends with "end" anyway): a cursor
// beyond a finished run would get an empty stream the client reconnects
// to forever.
func cursorFits(run *forge.Run, cur runner.LogCursor) bool {
	if !run.Status.Done() {
		return true
	}
	n := 0
	if run.Result != nil {
		n = len(run.Result.Steps)
	}
	n++ // a record from before per-step state may have one interrupted step's log after its steps
	if cur.Below > n {
		return false
	}
	for _, p := range cur.At {
		if p.Step >= n {
			return false
		}
	}
	return true
}

// sseLog writes a log stream as Server-Sent Events.
type sseLog struct {
	w         io.Writer
	flusher   http.Flusher
	lastWrite time.Time
	steps     map[int]*sseStep // steps the stream has begun
	below     int              // every step below was delivered whole
	fresh     bool             // output arrived since the last LogCaughtUp
}

// sseStep is what the stream sent of one step.
type sseStep struct {
	index int
	id    string
	name  string
	lines lineSplitter
	ended bool
}

type sseLine struct {
	Index   int    `json:"index"`
	ID      string `json:"id,omitempty"`
	Step    string `json:"step"`
	Line    string `json:"line"`
	Partial bool   `json:"partial,omitempty"`
	CR      bool   `json:"cr,omitempty"`
	Dropped int64  `json:"dropped,omitempty"`
}

// stepOf returns the state of ev's step, creating it (a stream resumed
// mid-step gets no LogStepStarted).
func (e *sseLog) stepOf(ev *runner.LogEvent) *sseStep {
	if e.steps == nil {
		e.steps = map[int]*sseStep{}
	}
	st := e.steps[ev.Step]
	if st == nil {
		st = &sseStep{index: ev.Step}
		e.steps[ev.Step] = st
	}
	if ev.Name != "" {
		st.name, st.id = ev.Name, ev.ID
	}
	return st
}

func (e *sseLog) emit(ev *runner.LogEvent) error {
	switch ev.Kind {
	case runner.LogStepStarted:
		st := e.stepOf(ev)
		st.lines, st.ended = lineSplitter{}, false
		data := map[string]any{"index": ev.Step, "step": ev.Name, "workflow": ev.Workflow, "skipped": ev.Skipped}
		if ev.ID != "" {
			data["id"] = ev.ID
		}
		if ev.NotRun {
			data["status"] = string(ev.Status)
			if ev.Reason != "" {
				data["reason"] = ev.Reason
			}
		}
		return e.event("step", e.id(st, 0, false), data)
	case runner.LogOutput:
		st := e.stepOf(ev)
		e.fresh = true
		return st.lines.feed(ev.Data, e.lineOf(st))
	case runner.LogDropped:
		st := e.stepOf(ev)
		if err := st.lines.flush(true, e.lineOf(st)); err != nil {
			return err
		}
		st.lines.skip(ev.Dropped)
		note := runner.DropNote(ev.Dropped)
		return e.event("line", e.id(st, st.lines.pos, false), sseLine{Index: ev.Step, ID: st.id, Step: st.name, Line: note[:len(note)-1], Dropped: ev.Dropped})
	case runner.LogStepEnded:
		st := e.stepOf(ev)
		err := st.lines.flush(false, e.lineOf(st))
		st.ended = true
		for e.steps[e.below] != nil && e.steps[e.below].ended {
			e.below++
		}
		return err
	case runner.LogCaughtUp:
		if !e.fresh {
			// A second quiet period: send what is held of unfinished lines.
			for _, i := range slices.Sorted(maps.Keys(e.steps)) {
				if st := e.steps[i]; !st.ended {
					if err := st.lines.flush(true, e.lineOf(st)); err != nil {
						return err
					}
				}
			}
		}
		e.fresh = false
		if time.Since(e.lastWrite) >= keepAlive {
			if _, err := io.WriteString(e.w, ": keep-alive\n\n"); err != nil {
				return err
			}
			e.lastWrite = time.Now()
		}
		if e.flusher != nil {
			e.flusher.Flush()
		}
	}
	return nil
}

// lineOf returns the function that sends one line event of st ending at
// offset end of its output.
func (e *sseLog) lineOf(st *sseStep) lineFunc {
	return func(text []byte, end int64, partial, cr bool) error {
		return e.event("line", e.id(st, end, partial), sseLine{Index: st.index, ID: st.id, Step: st.name, Line: string(text), Partial: partial, CR: cr})
	}
}

// id is the cursor after an event of st ending at offset off: st's entry
// first, then every other step begun and not delivered whole, and the
// steps delivered whole above the ones below e.below.
func (e *sseLog) id(st *sseStep, off int64, partial bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d:%d", st.index, off)
	if partial {
		b.WriteByte('+')
	}
	if len(e.steps) > 1 || e.below != st.index {
		for _, i := range slices.Sorted(maps.Keys(e.steps)) {
			o := e.steps[i]
			if o == st || i < e.below {
				continue
			}
			if o.ended {
				fmt.Fprintf(&b, ",%d:%d", i, o.lines.pos)
				continue
			}
			fmt.Fprintf(&b, ",%d:%d", i, o.lines.start)
			if o.lines.open {
				b.WriteByte('+')
			}
		}
		if e.below != st.index {
			fmt.Fprintf(&b, ",<%d", e.below)
		}
	}
	return b.String()
}

// event writes one SSE event whose data is v as JSON on one line (JSON
// escapes newlines and turns invalid UTF-8 into U+FFFD).
func (e *sseLog) event(name, id string, v any) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "id: %s\nevent: %s\ndata: ", id, name)
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	b.WriteByte('\n') // Encode ended the data line; this ends the event
	e.lastWrite = time.Now()
	_, err := e.w.Write(b.Bytes())
	return err
}

// lineSplitter cuts a step's output into lines: "\n", "\r\n" and a lone
// "\r" end a line; a line reaching maxEventLine bytes is sent in pieces cut
// at rune boundaries. It holds at most one line piece, so memory stays
// bounded whatever the step prints.
type lineSplitter struct {
	buf   []byte // the current line's bytes not sent yet
	start int64  // offset of buf[0] in the step's output
	pos   int64  // offset of the next byte fed
	cr    bool   // buf's line ended with "\r"; a "\n" may still follow
	// open: pieces of the current line were sent as partial, so the line
	// must still be ended by a line event without "partial", even an
	// empty one (the client joins the pieces until then).
	open bool
}

// lineFunc receives a line (without terminator) ending at offset end.
type lineFunc func(line []byte, end int64, partial, cr bool) error

func (s *lineSplitter) feed(data []byte, emit lineFunc) error {
	for len(data) > 0 {
		if s.cr {
			s.cr = false
			crlf := data[0] == '\n'
			if crlf {
				data = data[1:]
				s.pos++
			}
			if err := s.send(emit, !crlf); err != nil {
				return err
			}
			continue
		}
		i := bytes.IndexAny(data, "\r\n")
		if i < 0 {
			return s.add(data, emit)
		}
		if err := s.add(data[:i], emit); err != nil {
			return err
		}
		s.pos++
		if data[i] == '\r' {
			s.cr = true // decided by the next byte, the next flush or the end
			data = data[i+1:]
			continue
		}
		data = data[i+1:]
		if err := s.send(emit, false); err != nil {
			return err
		}
	}
	return nil
}

// add appends p to the current line, sending pieces of maxEventLine.
func (s *lineSplitter) add(p []byte, emit lineFunc) error {
	s.buf = append(s.buf, p...)
	s.pos += int64(len(p))
	for len(s.buf) >= maxEventLine {
		cut := runeCut(s.buf[:maxEventLine])
		if err := emit(s.buf[:cut], s.start+int64(cut), true, false); err != nil {
			return err
		}
		s.buf = append(s.buf[:0], s.buf[cut:]...)
		s.start += int64(cut)
		s.open = true
	}
	return nil
}

// send emits the current line as complete and starts the next one.
func (s *lineSplitter) send(emit lineFunc, cr bool) error {
	err := emit(s.buf, s.pos, false, cr)
	s.buf, s.start, s.open = s.buf[:0], s.pos, false
	return err
}

// flush sends what is held: as a partial piece (more of the line may come)
// or, at the end of the step, as the last line (an output not ending with
// a newline), which ends a line sent in partial pieces even when nothing of
// it is held any more. A line ended by "\r" waits for the next byte (is it
// "\r\n"?) or the end of the step.
func (s *lineSplitter) flush(partial bool, emit lineFunc) error {
	if s.cr {
		if partial {
			// Whether "\r" or "\r\n" ended the line is decided by the next
			// byte; sending it now would turn a late "\n" into an empty line.
			return nil
		}
		s.cr = false
		return s.send(emit, true)
	}
	if !partial && (len(s.buf) > 0 || s.open) {
		return s.send(emit, false)
	}
	if len(s.buf) == 0 {
		return nil
	}
	cut := runeCut(s.buf)
	if cut == 0 {
		return nil
	}
	err := emit(s.buf[:cut], s.start+int64(cut), true, false)
	s.buf = append(s.buf[:0], s.buf[cut:]...)
	s.start += int64(cut)
	s.open = true
	return err
}

// skip moves past n bytes the log cap dropped.
func (s *lineSplitter) skip(n int64) {
	s.pos += n
	s.start = s.pos
	s.open = false // the drop note that follows ends the client's line
}

// runeCut returns the length of the longest prefix of b that does not end
// inside a UTF-8 sequence that more bytes could complete.
func runeCut(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}
