package api

import (
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
)

// keepAlive is how long a followed stream may stay silent before a
// keep-alive (an SSE comment) is sent, so proxies keep the connection.
const keepAlive = 15 * time.Second

// runLogs is GET /repos/:name/workflows/:id/logs (workflow:read): the logs
// of the run's steps, in order, as text/plain with a "==> <name>" line
// before each step (a skipped one says "(skipped)"), or only the steps
// named by ?step=NAME without those lines.
//
// ?follow=true streams (chunked) while the run goes on: the backlog first,
// then output as steps print it, ending when the run ends. A request with
// `Accept: text/event-stream` gets Server-Sent Events instead (always
// following; see serveEventStream). Bytes dropped by the step log cap
// appear as one runner.DropNote line. Errors: 404 for an unknown run, or
// a ?step of a finished run that has no step of that name; 400 for a
// follow value that is not a boolean.
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
	step := q.Get("step")
	if step != "" && run.Status.Done() && !hasStep(run, step) {
		return forge.NotFound("Step not found")
	}
	ctx, stop := s.streamContext(r.Context(), c.p)
	defer stop()
	if wantsEventStream(r) {
		return s.serveEventStream(ctx, w, r, run, step)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p := &plainLog{w: w, flusher: flusherOf(w), headers: step == "", lastNL: true}
	if follow {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
		w.WriteHeader(http.StatusOK)
		p.wrote = true
		if p.flusher != nil {
			p.flusher.Flush() // the client learns at once that the stream is on
		}
	}
	err = s.Runner.StreamLogs(ctx, run.ID, runner.LogOptions{Step: step, Follow: follow}, p.emit)
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
		for _, st := range run.Result.Steps {
			if !st.Success && st.Error != "" {
				reason = "step " + st.Name + ": " + st.Error
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
}

func (p *plainLog) emit(ev *runner.LogEvent) error {
	var err error
	switch ev.Kind {
	case runner.LogStepStarted:
		if p.headers {
			skipped := ""
			if ev.Skipped {
				skipped = " (skipped)"
			}
			err = p.write([]byte(fmt.Sprintf("%s==> %s%s\n", p.newline(), ev.Name, skipped)))
		}
	case runner.LogOutput:
		err = p.write(ev.Data)
	case runner.LogDropped:
		err = p.write([]byte(p.newline() + runner.DropNote(ev.Dropped)))
	case runner.LogCaughtUp:
		if p.flusher != nil {
			p.flusher.Flush()
		}
	}
	return err
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

func hasStep(run *forge.Run, name string) bool {
	if run.Result == nil {
		return false
	}
	for _, st := range run.Result.Steps {
		if st.Name == name {
			return true
		}
	}
	return false
}

// parseEventID reads an SSE id this server sent: "<step>:<offset>", or
// "end" (done is true).
func parseEventID(id string) (pos runner.LogPosition, done, ok bool) {
	if id == "end" {
		return pos, true, true
	}
	a, b, found := strings.Cut(id, ":")
	step, err1 := strconv.Atoi(a)
	off, err2 := strconv.ParseInt(b, 10, 64)
	if !found || err1 != nil || err2 != nil || step < 0 || off < 0 {
		return pos, false, false
	}
	return runner.LogPosition{Step: step, Offset: off}, false, true
}
