package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/workflow"
)

// keepAlive is how long a followed stream may stay silent before a
// keep-alive (an SSE comment) is sent, so proxies keep the connection.
const keepAlive = 15 * time.Second

// runLogs is GET /repos/:name/workflows/:id/logs (workflow:read): the logs
// of the run's steps in plan order, as text/plain with a "==> <name>" line
// before each step ("==> <name> (<workflow>)" when several steps of the run
// have the name; one that did not run says "(skipped: <reason>)" or
// "(cancelled: <reason>)"), or only the step ?step=ID|NAME without those
// lines.
//
// ?follow=true streams (chunked) while the run goes on: the backlog first,
// then output as steps print it, ending when the run ends. While more than
// one step runs at once their lines are interleaved, each line starting
// with "[<name>] " (the step id when several steps of the run have the
// name); a sequential run's stream is the plain log. A request with `Accept:
// text/event-stream` gets Server-Sent Events instead (always following;
// see serveEventStream). Bytes dropped by the step log cap appear as one
// runner.DropNote line. Errors: 404 for an unknown run, or a ?step the run
// has no step of; 400 for a ?step NAME several steps have (the message
// lists their ids) and for a follow value that is not a boolean.
func (s *Server) runLogs(w http.ResponseWriter, r *http.Request, c *call) error {
	run, err := s.runOf(r, c)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	follow, err := queryBool(q.Get("follow"))
	if err != nil {
		return forge.Invalid("Invalid follow value: use true or false")
	}
	step, byName, err := resolveStep(run, q.Get("step"))
	if err != nil {
		return err
	}
	ctx, stop := s.streamContext(r.Context(), c.p)
	defer stop()
	if wantsEventStream(r) {
		return s.serveEventStream(ctx, w, r, run, runner.LogOptions{Step: step, StepByName: byName, Follow: true})
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := &plainLog{w: w, flusher: flusherOf(w), headers: step == "", lastNL: true, open: map[int]*openStep{}, interleave: follow}
	if follow {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		p.wrote = true
		if p.flusher != nil {
			p.flusher.Flush() // the client learns at once that the stream is on
		}
	}
	err = s.Runner.StreamLogs(ctx, run.ID, runner.LogOptions{Step: step, StepByName: byName, Follow: follow}, p.emit)
	if err == nil && p.headers {
		err = p.runError(ctx, s.Store, run.ID)
	}
	return s.streamEnded(r, err, p.wrote)
}

// runError ends a full log with the run's own error, if it ended with one
// (a workflow that does not parse, a restart), or else the error of the
// step that failed it: without it a run that failed before any step would
// show an empty log, and a step the engine failed would show no reason.
func (p *plainLog) runError(ctx context.Context, store forge.RunStore, id string) error {
	run, err := store.GetRun(ctx, id)
	if err != nil || !run.Status.Done() {
		return nil // deleted meanwhile, or not over
	}
	reason := run.Error
	if reason == "" && run.Status == forge.RunFailed && run.Result != nil {
		// A failed step failed the run: its error is the reason.
		names := map[string]int{}
		for _, st := range run.Result.Steps {
			names[st.Name]++
		}
		for _, st := range run.Result.Steps {
			if !st.Success && st.Error != "" {
				reason = "step " + stepTitle(st.Name, st.Workflow, names[st.Name] > 1) + ": " + st.Error
			}
		}
	}
	if reason == "" {
		return nil
	}
	return p.write([]byte(fmt.Sprintf("%s==> run %s: %s\n", p.newline(), run.Status, reason)))
}

// streamEnded turns the error that ended a stream into the handler's
// result: nothing once the response has started (the client went away, or
// the server is stopping), else the error for the usual mapping.
func (s *Server) streamEnded(r *http.Request, err error, started bool) error {
	if err == nil || !started && !errors.Is(err, context.Canceled) {
		return err
	}
	if !errors.Is(err, context.Canceled) {
		s.log.Warn("log stream ended", "path", r.URL.Path, "err", err)
	}
	return nil
}

// plainLog writes a log stream as text.
type plainLog struct {
	w       io.Writer
	flusher http.Flusher
	headers bool // "==> name" lines between steps
	lastNL  bool // the last byte written was a newline (or nothing yet)
	wrote   bool
	// open are the steps started and not ended; with more than one and
	// interleave (a followed stream), lines are written whole with a
	// "[name] " prefix. A snapshot has each step whole, in plan order.
	open       map[int]*openStep
	interleave bool
}

// openStep is a step of a followed stream that has not ended.
type openStep struct {
	name   string
	id     string
	shared bool   // another step of the run has the same name
	held   []byte // the start of a line not ended yet (interleaved mode)
}

func (p *plainLog) emit(ev *runner.LogEvent) error {
	var err error
	switch ev.Kind {
	case runner.LogStepStarted:
		if p.headers {
			err = p.write([]byte(fmt.Sprintf("%s==> %s%s\n", p.newline(), stepTitle(ev.Name, ev.Workflow, ev.Shared), notRun(ev))))
		}
		if !ev.NotRun && p.interleave {
			p.open[ev.Step] = &openStep{name: ev.Name, id: ev.ID, shared: ev.Shared}
		}
	case runner.LogOutput:
		err = p.output(ev.Step, ev.Data)
	case runner.LogDropped:
		note := []byte(runner.DropNote(ev.Dropped))
		if o := p.open[ev.Step]; o != nil && len(p.open) > 1 {
			err = p.output(ev.Step, append([]byte{'\n'}, note...))
		} else {
			err = p.write([]byte(p.newline() + string(note)))
		}
	case runner.LogStepEnded:
		if o := p.open[ev.Step]; o != nil && len(o.held) > 0 {
			err = p.write(append(append([]byte(p.newline()+p.prefix(ev.Step)), o.held...), '\n'))
		}
		delete(p.open, ev.Step)
	case runner.LogCaughtUp:
		if p.flusher != nil {
			p.flusher.Flush()
		}
	}
	return err
}

// stepTitle names a step in a log: its name, followed by its workflow
// (with the matrix values of its instance) when shared, i.e. another step
// of the run has the same name: "left (pipe.toml (OS=b))".
func stepTitle(name, workflow string, shared bool) string {
	if !shared || workflow == "" {
		return name
	}
	return name + " (" + workflow + ")"
}

// notRun is what a step header says of a step that never ran.
func notRun(ev *runner.LogEvent) string {
	if !ev.NotRun && !ev.Skipped {
		return ""
	}
	word := "skipped"
	if !ev.Skipped {
		word = string(ev.Status)
	}
	if ev.Reason == "" {
		return " (" + word + ")"
	}
	return " (" + word + ": " + ev.Reason + ")"
}

// output writes data of step i: as it comes while it is the only open
// step, else line by line with the step's prefix, holding an unfinished
// line until it ends.
func (p *plainLog) output(i int, data []byte) error {
	o := p.open[i]
	if o == nil || len(p.open) <= 1 {
		if o != nil && len(o.held) > 0 {
			held := o.held
			o.held = nil
			if err := p.write(append([]byte(p.newline()+p.prefix(i)), held...)); err != nil {
				return err
			}
		}
		return p.write(data)
	}
	var b []byte
	for {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			o.held = append(o.held, data...)
			break
		}
		b = append(b, p.prefix(i)...)
		b = append(b, o.held...)
		b = append(b, data[:nl+1]...)
		o.held = o.held[:0]
		data = data[nl+1:]
	}
	if len(b) == 0 {
		return nil
	}
	return p.write(append([]byte(p.newline()), b...))
}

// prefix is "[name] " of step i, or "[id] " when another step of the run
// (or, in records without that knowledge, another open step) has the same
// name.
func (p *plainLog) prefix(i int) string {
	o := p.open[i]
	if o == nil {
		return ""
	}
	if o.shared && o.id != "" {
		return "[" + o.id + "] "
	}
	for j, other := range p.open {
		if j != i && other.name == o.name && o.id != "" {
			return "[" + o.id + "] "
		}
	}
	return "[" + o.name + "] "
}

// newline is what ends an unfinished line before a line of kod's own.
func (p *plainLog) newline() string {
	if p.lastNL {
		return ""
	}
	return "\n"
}

func (p *plainLog) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	p.wrote = true
	p.lastNL = b[len(b)-1] == '\n'
	_, err := p.w.Write(b)
	return err
}

// StopStreams ends every log stream being served (server shutdown: the
// HTTP server waits for open requests, and followers would otherwise keep
// it until their runs end). Later streams end at once.
func (s *Server) StopStreams() {
	s.stopStreamsOnce.Do(func() { close(s.streamsStopped) })
}

// streamContext derives the context of one log stream: it ends with the
// request, at StopStreams, or when the principal's token is deleted or
// expires (checked every Deps.TokenRecheck, default 30 s).
func (s *Server) streamContext(ctx context.Context, p *forge.Principal) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	every := s.TokenRecheck
	if every <= 0 {
		every = 30 * time.Second
	}
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-s.streamsStopped:
				cancel()
				return
			case <-ctx.Done():
				return
			case <-tick.C:
				if !s.tokenStillValid(ctx, p) {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}

// tokenStillValid reports whether the token a long stream was opened with
// still exists and has not expired: a deleted token must not keep reading
// logs for the rest of a run. Principals without a token pass.
func (s *Server) tokenStillValid(ctx context.Context, p *forge.Principal) bool {
	if p == nil || p.TokenID == "" {
		return true
	}
	tok, err := s.Store.GetToken(ctx, p.TokenID)
	if errors.Is(err, forge.ErrNotFound) {
		return false
	}
	if err != nil {
		return true // a store hiccup does not cut a reader off; the next check decides
	}
	return !tok.Expired(s.now().UnixMilli())
}

func flusherOf(w http.ResponseWriter) http.Flusher {
	f, _ := w.(http.Flusher)
	return f
}

// queryBool parses a boolean query value; "" is false.
func queryBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, errors.New("not a boolean")
}

// wantsEventStream reports whether the request's Accept header asks for
// text/event-stream.
func wantsEventStream(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// resolveStep returns what ?step selects in run: a step id, a name only
// one step has (its id, when the record has ids), or "" for every step;
// byName when it could not be resolved yet (the run is not planned: the
// stream resolves it once it is).
// Errors: 404 when the run (planned, or finished) has no such step; 400
// when several steps have that name, listing their ids.
func resolveStep(run *forge.Run, want string) (step string, byName bool, err error) {
	if want == "" {
		return "", false, nil
	}
	var steps []forge.StepResult
	if run.Result != nil {
		steps = run.Result.Steps
	}
	var ids []string
	found := false
	for _, st := range steps {
		if st.ID != "" && st.ID == want {
			return want, false, nil
		}
		if st.Name == want {
			found = true
			if st.ID != "" {
				ids = append(ids, st.ID)
			}
		}
	}
	switch {
	case len(ids) > 1:
		return "", false, forge.Invalid(fmt.Sprintf("Several steps are named %q: ask for one by id (%s)", want, strings.Join(ids, ", ")))
	case len(ids) == 1:
		return ids[0], false, nil
	case found:
		return want, false, nil // a record from before step ids
	case run.Status.Done() || len(steps) > 0:
		return "", false, forge.NotFound("Step not found")
	}
	return want, true, nil // not planned yet: the stream filters by name
}

// maxLogIndex bounds the log indexes of a run: its steps and, after them,
// its services' pseudo-steps.
const maxLogIndex = runner.MaxRunSteps * (1 + workflow.MaxServices)

// parseEventID reads an SSE id this server sent: a cursor of
// comma-separated entries "<step>:<offset>" (with "+" after an offset
// that ends a partial line piece; partial lists those steps) and at most
// one "<N" (steps below N not listed were delivered; default: the first
// entry's step), or "end" (done is true). See runner.LogCursor. Step
// indexes and N above maxLogIndex are refused (not ok).
func parseEventID(id string) (cur runner.LogCursor, partial map[int]bool, done, ok bool) {
	if id == "end" {
		return cur, nil, true, true
	}
	partial = map[int]bool{}
	below := -1
	for i, part := range strings.Split(id, ",") {
		if b, isBelow := strings.CutPrefix(part, "<"); isBelow {
			n, err := strconv.Atoi(b)
			if err != nil || n < 0 || n > maxLogIndex || below >= 0 || strings.HasPrefix(b, "+") {
				return cur, nil, false, false
			}
			below = n
			continue
		}
		part, open := strings.CutSuffix(part, "+")
		a, b, found := strings.Cut(part, ":")
		step, err1 := strconv.Atoi(a)
		off, err2 := strconv.ParseInt(b, 10, 64)
		if !found || err1 != nil || err2 != nil || step < 0 || step >= maxLogIndex || off < 0 || strings.HasPrefix(a, "+") || strings.HasPrefix(b, "+") || i > runner.MaxRunSteps {
			return cur, nil, false, false
		}
		cur.At = append(cur.At, runner.LogPosition{Step: step, Offset: off})
		if open {
			partial[step] = true
		}
	}
	switch {
	case below >= 0:
		cur.Below = below
	case len(cur.At) > 0:
		cur.Below = cur.At[0].Step
	default:
		return cur, nil, false, false
	}
	return cur, partial, false, true
}
