package runner

import (
	"context"
	"errors"
	"io"
	"os"
	"time"

	"github.com/kod-forge/kod/forge"
)

// LogOptions selects what StreamLogs delivers.
type LogOptions struct {
	// Step limits the stream to the step with this id ("" = every step);
	// steps without an id (records from before step ids) match by name.
	Step string
	// StepByName: Step may also be a step name (asked before the run was
	// planned); once a step with id Step exists, only it matches. A run
	// of several workflow files may have several steps of one name.
	StepByName bool
	// Follow waits for more output until the run ends (waiting first for
	// a queued run to start). Without it StreamLogs delivers what exists
	// now and returns.
	Follow bool
	// From resumes a stream at a cursor an earlier stream reported (see
	// LogCursor); nil starts at the beginning.
	From *LogCursor
	// Idle is how often LogCaughtUp repeats while a followed run prints
	// nothing; default 1 s.
	Idle time.Duration
}

// LogPosition is a place in a run's logs: byte Offset of step Step's output.
type LogPosition struct {
	Step   int
	Offset int64
}

// LogCursor is where a stream of a run's logs stopped: every step of index
// below Below that is not in At was delivered whole; each step in At was
// delivered up to its Offset (its LogStepStarted is not repeated); every
// other step is delivered from its start. A sequential run's cursor is one
// position: Below is its step.
type LogCursor struct {
	Below int
	At    []LogPosition
}

// CursorAt is the cursor of a sequential stream stopped at p.
func CursorAt(p LogPosition) *LogCursor { return &LogCursor{Below: p.Step, At: []LogPosition{p}} }

// LogEventKind says what a LogEvent reports.
type LogEventKind int

const (
	LogStepStarted LogEventKind = iota // a step began; Skipped (or Status cancelled) if it did not run
	LogOutput                          // Data holds the next bytes of the step's output
	LogDropped                         // Dropped bytes of the output were cut by the log cap here
	LogStepEnded                       // the step's output is complete
	LogCaughtUp                        // (Follow) everything so far was delivered; waiting for more
)

// LogEvent is one piece of a run's logs. Within one step, events come in
// the order the step wrote; a followed run with steps running at once
// interleaves their events (a LogStepStarted opens each step, a
// LogStepEnded closes it). Data is only valid during the emit call.
type LogEvent struct {
	Kind     LogEventKind
	Step     int    // index of the step in result.steps
	ID       string // the step's id ("" in records from before step ids)
	Name     string // step name
	Workflow string // workflow file of the step (with its matrix values)
	// Shared: another step of the run has the same Name (a matrix's
	// instances, or files with a step of the same name), so people need
	// the Workflow or the ID to tell them apart.
	Shared  bool
	Skipped bool
	// NotRun: the step never started (skipped, or cancelled before it
	// ran); Reason says why.
	NotRun  bool
	Status  forge.StepStatus // the step's state when the event was made ("" if unknown)
	Reason  string
	Data    []byte
	Dropped int64
	Offset  int64 // position in the step's log after this event
}

// logChunk is how much of a log one read delivers.
const logChunk = 32 << 10

// StreamLogs delivers the logs of run id to emit, step by step from the
// first byte (or opts.From). For an executing run it reads each step's log
// as it is written, and with opts.Follow it returns once the run has ended
// and everything was delivered; for a finished run it reads the log files.
// It returns emit's first error, ctx.Err() when ctx ends, or a store error
// (ErrNotFound for an unknown run).
func (r *Runner) StreamLogs(ctx context.Context, id string, opts LogOptions, emit func(*LogEvent) error) error {
	if opts.Idle <= 0 {
		opts.Idle = time.Second
	}
	for {
		started := r.runStarts.wait()
		if s := r.stream(id); s != nil {
			return followStream(ctx, s, opts, emit)
		}
		run, err := r.store.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if run.Status.Done() || !opts.Follow {
			return storedLogs(ctx, r.cfg.LogsDir, run, opts, emit)
		}
		// Queued, or between being claimed and its stream appearing.
		if err := emit(&LogEvent{Kind: LogCaughtUp}); err != nil {
			return err
		}
		select {
		case <-started:
		case <-time.After(opts.Idle):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// follower walks the steps of a run for one StreamLogs call.
type follower struct {
	opts LogOptions
	emit func(*LogEvent) error
	at   map[int]*stepCursor
	// below: steps of index below it not in at were delivered whole
	// (opts.From.Below; kept as a bound, not one entry per step, since it
	// comes from a client).
	below  int
	byName bool // opts.StepByName until resolve finds the id
	buf    []byte
	names  map[string]int // how many steps of the run have each name
}

// countNames notes how many of steps have each name (LogEvent.Shared).
func (f *follower) countNames(steps []streamStep) {
	if len(f.names) > 0 {
		return // the plan's steps do not change once set
	}
	f.names = map[string]int{}
	for _, st := range steps {
		f.names[st.Name]++
	}
}

// stepCursor is what a follower delivered of one step.
type stepCursor struct {
	off     int64
	started bool // LogStepStarted sent
	ended   bool // LogStepEnded sent (or the step is filtered out)
}

func newFollower(opts LogOptions, emit func(*LogEvent) error) *follower {
	f := &follower{opts: opts, emit: emit, at: map[int]*stepCursor{}, byName: opts.StepByName && opts.Step != "", buf: make([]byte, logChunk)}
	if c := opts.From; c != nil {
		f.below = c.Below
		for _, p := range c.At {
			f.at[p.Step] = &stepCursor{off: p.Offset, started: true}
		}
	}
	return f
}

func (f *follower) cursor(i int) *stepCursor {
	c := f.at[i]
	if c == nil {
		c = &stepCursor{}
		if i < f.below {
			c.started, c.ended = true, true
		}
		f.at[i] = c
	}
	return c
}

// wants reports whether the stream includes st.
func (f *follower) wants(st streamStep) bool {
	return f.opts.Step == "" || st.ID == f.opts.Step || (st.ID == "" || f.byName) && st.Name == f.opts.Step
}

// resolve stops matching steps by name once steps has one of id opts.Step.
func (f *follower) resolve(steps []streamStep) {
	if !f.byName {
		return
	}
	for _, st := range steps {
		if st.ID == f.opts.Step {
			f.byName = false
			return
		}
	}
}

func followStream(ctx context.Context, s *runStream, opts LogOptions, emit func(*LogEvent) error) error {
	f := newFollower(opts, emit)
	for {
		steps, order, done, wake := s.snapshot()
		f.countNames(steps)
		f.resolve(steps)
		if !opts.Follow {
			// What exists now, in plan order: each step that began, as
			// far as it goes.
			order = order[:0]
			for i, st := range steps {
				if st.began {
					order = append(order, i)
				}
			}
		}
		open := false
		for _, i := range order {
			st := steps[i]
			c := f.cursor(i)
			if c.ended {
				continue
			}
			if !f.wants(st) {
				c.ended = true
				continue
			}
			var src logSource
			if st.log != nil {
				src = st.log
			}
			ended, err := f.deliver(ctx, i, st, c, src, st.Status.Done())
			if err != nil {
				return err
			}
			if !ended {
				open = true
			}
		}
		if !opts.Follow || done && !open && len(order) == len(steps) || done && len(steps) == 0 {
			return nil
		}
		if done && !open {
			// Steps the engine never reported (a run that failed as a
			// whole): nothing to deliver.
			return nil
		}
		for caughtUp := true; caughtUp; {
			if err := emit(&LogEvent{Kind: LogCaughtUp}); err != nil {
				return err
			}
			select {
			case <-wake:
				caughtUp = false
			case <-time.After(opts.Idle):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// logSource is a step's output: a live stepLog or a finished log file.
type logSource interface {
	readAt(p []byte, off int64) (n int, gap int64, end bool, err error)
}

// deliver sends what is available of step st, index i (read from log;
// nil: the step has no output, ended tells whether it is over) and
// reports whether the step has ended, in which case its cursor says so.
func (f *follower) deliver(ctx context.Context, i int, st streamStep, c *stepCursor, log logSource, ended bool) (bool, error) {
	ev := LogEvent{Step: i, ID: st.ID, Name: st.Name, Workflow: st.Workflow, Shared: f.names[st.Name] > 1, Skipped: st.Skipped, Status: st.Status}
	ev.NotRun, ev.Reason = st.NotRun, st.Reason
	if !c.started {
		ev.Kind = LogStepStarted
		if err := f.emit(&ev); err != nil {
			return false, err
		}
		c.started = true
	}
	for log != nil {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, gap, end, err := log.readAt(f.buf, c.off)
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			return false, err
		case n > 0:
			c.off += int64(n)
			ev.Kind, ev.Data, ev.Offset = LogOutput, f.buf[:n], c.off
		case gap > 0:
			c.off += gap
			ev.Kind, ev.Data, ev.Dropped, ev.Offset = LogDropped, nil, gap, c.off
		case end:
			log, ended = nil, true
			continue
		default:
			return false, nil // nothing more yet
		}
		if err := f.emit(&ev); err != nil {
			return false, err
		}
	}
	if !ended {
		return false, nil
	}
	ev.Kind, ev.Data, ev.Dropped, ev.Offset = LogStepEnded, nil, 0, c.off
	if err := f.emit(&ev); err != nil {
		return false, err
	}
	c.ended = true
	return true, nil
}

// storedLogs delivers the logs of a run that is not executing from its
// log files, in plan order: the steps of its record, then (for runs
// interrupted before their step was recorded, in records from before
// per-step state) any further numbered log file.
func storedLogs(ctx context.Context, logsDir string, run *forge.Run, opts LogOptions, emit func(*LogEvent) error) error {
	var steps []forge.StepResult
	if run.Result != nil {
		steps = run.Result.Steps
	}
	f := newFollower(opts, emit)
	recorded := make([]streamStep, len(steps))
	for i, r := range steps {
		recorded[i].Name = r.Name
	}
	f.countNames(recorded)
	for _, st := range steps {
		if f.byName && st.ID == opts.Step {
			f.byName = false
		}
	}
	for i := 0; ; i++ {
		st := streamStep{Name: "(interrupted step)", Status: forge.StepFailed}
		if i < len(steps) {
			r := steps[i]
			st = streamStep{ID: r.ID, Name: r.Name, Workflow: r.Workflow, Skipped: r.Skipped, Status: r.Status}
			if r.StartedAt == 0 && (r.Skipped || r.Status == forge.StepCancelled) {
				st.NotRun, st.Reason = true, r.Error
			}
		} else if c := run.CurrentStep; c != nil && c.Index == i {
			st = streamStep{Name: c.Name, Workflow: c.Workflow}
		}
		file, err := os.Open(StepLogPath(logsDir, run.ID, i))
		switch {
		case errors.Is(err, os.ErrNotExist) && i >= len(steps):
			return nil
		case errors.Is(err, os.ErrNotExist):
			file, err = nil, nil // skipped, or its log could not be written: no output
		case err != nil:
			return err
		}
		c := f.cursor(i)
		if !c.ended && f.wants(st) && (file != nil || i >= len(steps) || st.Status != forge.StepPending) {
			var src logSource
			if file != nil {
				src = &fileLog{f: file}
			}
			_, err = f.deliver(ctx, i, st, c, src, true)
		}
		if file != nil {
			file.Close()
		}
		if err != nil {
			return err
		}
	}
}

// fileLog reads a finished step log file.
type fileLog struct {
	f     *os.File
	size  int64 // bytes, once sized
	sized bool
}

func (l *fileLog) readAt(p []byte, off int64) (int, int64, bool, error) {
	if !l.sized {
		st, err := l.f.Stat()
		if err != nil {
			return 0, 0, false, err
		}
		l.size, l.sized = st.Size(), true
	}
	if off >= l.size {
		return 0, 0, true, nil
	}
	n, err := l.f.ReadAt(p[:min(int64(len(p)), l.size-off)], off)
	if n > 0 {
		err = nil
	}
	return n, 0, false, err
}

var (
	_ logSource = (*stepLog)(nil)
	_ logSource = (*fileLog)(nil)
	_ io.Writer = (*stepLog)(nil)
)
