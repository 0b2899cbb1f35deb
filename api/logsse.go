package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
//	event: step  data: {"index":0,"step":"build","workflow":"...","skipped":false}
//	event: line  data: {"index":0,"step":"build","line":"text"}
//	event: end   data: {"status":"completed","error":"..."}
//
// A line event is one line of output without its terminator; a line ended
// by a lone "\r" (progress output) has "cr": true (a terminal would write
// the next line over it); "partial": true means the line continues in the
// next line event (lines over 32 KiB, or an unfinished line left alone
// for about a second); a line ends with an event without "partial", so a
// step whose output ends in an unfinished line sent in pieces gets a last
// line event with "line": "" at its end. "dropped": N marks where the step
// log cap cut N bytes. Invalid UTF-8 is replaced with U+FFFD. Every event
// has an id ("<step>:<offset>", "<step>:<offset>+" for a partial piece,
// "end"); a client reconnecting with Last-Event-ID resumes after it (after
// a partial piece, the line is continued and ended), and one reconnecting
// after "end" gets 204, which tells EventSource to stop. Comments keep idle
// connections alive.
func (s *Server) serveEventStream(ctx context.Context, w http.ResponseWriter, r *http.Request, run *forge.Run, step string) error {
	opts := runner.LogOptions{Step: step, Follow: true}
	resumeOpen := false
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		pos, partial, done, ok := parseEventID(id)
		if !ok {
			return forge.Invalid("Invalid Last-Event-ID")
		}
		if done {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		opts.From = &pos
		resumeOpen = partial
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	e := &sseLog{w: w, flusher: flusherOf(w), lastWrite: time.Now()}
	if e.flusher != nil {
		e.flusher.Flush()
	}
	if p := opts.From; p != nil {
		e.step.Step = p.Step
		e.lines.pos, e.lines.start = p.Offset, p.Offset
		e.lines.open = resumeOpen // the client holds the start of a line
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

// sseLog writes a log stream as Server-Sent Events.
type sseLog struct {
	w         io.Writer
	flusher   http.Flusher
	lastWrite time.Time
	step      runner.LogEvent // the step being sent (Kind, Data unused)
	lines     lineSplitter
	fresh     bool // output arrived since the last LogCaughtUp
}

type sseLine struct {
	Index   int    `json:"index"`
	Step    string `json:"step"`
	Line    string `json:"line"`
	Partial bool   `json:"partial,omitempty"`
	CR      bool   `json:"cr,omitempty"`
	Dropped int64  `json:"dropped,omitempty"`
}

func (e *sseLog) emit(ev *runner.LogEvent) error {
	switch ev.Kind {
	case runner.LogStepStarted:
		e.step = *ev
		e.lines = lineSplitter{}
		return e.event("step", fmt.Sprintf("%d:0", ev.Step), map[string]any{
			"index": ev.Step, "step": ev.Name, "workflow": ev.Workflow, "skipped": ev.Skipped,
		})
	case runner.LogOutput:
		e.step.Step, e.step.Name = ev.Step, ev.Name // also when resuming mid-step
		e.fresh = true
		return e.lines.feed(ev.Data, e.line)
	case runner.LogDropped:
		if err := e.lines.flush(true, e.line); err != nil {
			return err
		}
		e.lines.skip(ev.Dropped)
		note := runner.DropNote(ev.Dropped)
		return e.event("line", e.id(e.lines.pos), sseLine{Index: ev.Step, Step: ev.Name, Line: note[:len(note)-1], Dropped: ev.Dropped})
	case runner.LogStepEnded:
		e.step.Step, e.step.Name = ev.Step, ev.Name // resumed at its end: no output came
		return e.lines.flush(false, e.line)
	case runner.LogCaughtUp:
		if !e.fresh {
			// A second quiet period: send what is held of an unfinished line.
			if err := e.lines.flush(true, e.line); err != nil {
				return err
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

// line sends one line event ending at offset end of the step's output.
func (e *sseLog) line(text []byte, end int64, partial, cr bool) error {
	id := e.id(end)
	if partial {
		id += "+"
	}
	return e.event("line", id, sseLine{Index: e.step.Step, Step: e.step.Name, Line: string(text), Partial: partial, CR: cr})
}

func (e *sseLog) id(off int64) string { return fmt.Sprintf("%d:%d", e.step.Step, off) }

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
