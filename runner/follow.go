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
	// Step limits the stream to steps of this name ("" = every step). A run
	// of several workflow files may have several steps of one name.
	Step string
	// Follow waits for more output until the run ends (waiting first for
	// a queued run to start). Without it StreamLogs delivers what exists
	// now and returns.
	Follow bool
	// From resumes a stream after a position an earlier stream reported
	// (LogEvent.Step and Offset; the LogStepStarted of that step is not
	// repeated); nil starts at the beginning.
	From *LogPosition
	// Idle is how often LogCaughtUp repeats while a followed run prints
	// nothing; default 1 s.
	Idle time.Duration
}

// LogPosition is a place in a run's logs: byte Offset of step Step's output.
type LogPosition struct {
	Step   int
	Offset int64
}

// LogEventKind says what a LogEvent reports.
type LogEventKind int

const (
	LogStepStarted LogEventKind = iota // a step began; Skipped if it did not run
	LogOutput                          // Data holds the next bytes of the step's output
	LogDropped                         // Dropped bytes of the output were cut by the log cap here
	LogStepEnded                       // the step's output is complete
	LogCaughtUp                        // (Follow) everything so far was delivered; waiting for more
)

// LogEvent is one piece of a run's logs, in the order the steps wrote
// them. Data is only valid during the emit call.
type LogEvent struct {
	Kind     LogEventKind
	Step     int    // index of the step in result.steps
	Name     string // step name
	Workflow string // workflow file of the step
	Skipped  bool
	Data     []byte
	Dropped  int64
	Offset   int64 // position in the step's log after this event
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
	opts    LogOptions
	emit    func(*LogEvent) error
	cur     int   // index of the step being delivered
	off     int64 // offset in it
	started bool  // LogStepStarted sent for cur
	buf     []byte
}

func newFollower(opts LogOptions, emit func(*LogEvent) error) *follower {
	f := &follower{opts: opts, emit: emit, buf: make([]byte, logChunk)}
	if p := opts.From; p != nil {
		f.cur, f.off, f.started = p.Step, p.Offset, true
	}
	return f
}

func followStream(ctx context.Context, s *runStream, opts LogOptions, emit func(*LogEvent) error) error {
	f := newFollower(opts, emit)
	for {
		steps, done, wake := s.snapshot()
		for f.cur < len(steps) {
			st := steps[f.cur]
			if opts.Step != "" && st.Name != opts.Step {
				f.next()
				continue
			}
			var src logSource
			if st.log != nil {
				src = st.log
			}
			ended, err := f.deliver(ctx, st, src)
			if err != nil {
				return err
			}
			if !ended {
				break
			}
		}
		if done && f.cur >= len(steps) || !opts.Follow {
			return nil
		}
		for caughtUp := true; caughtUp; {
			if err := emit(&LogEvent{Kind: LogCaughtUp, Step: f.cur, Offset: f.off}); err != nil {
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

func (f *follower) next() { f.cur, f.off, f.started = f.cur+1, 0, false }

// logSource is a step's output: a live stepLog or a finished log file.
type logSource interface {
	readAt(p []byte, off int64) (n int, gap int64, end bool, err error)
}

// deliver sends what is available of step st (read from log; nil: the
// step has no output) and reports whether the step has ended, in which
// case the follower moved on.
func (f *follower) deliver(ctx context.Context, st streamStep, log logSource) (bool, error) {
	ev := LogEvent{Step: f.cur, Name: st.Name, Workflow: st.Workflow, Skipped: st.Skipped}
	if !f.started {
		ev.Kind = LogStepStarted
		if err := f.emit(&ev); err != nil {
			return false, err
		}
		f.started = true
	}
	for log != nil {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		n, gap, end, err := log.readAt(f.buf, f.off)
		switch {
		case err != nil && !errors.Is(err, io.EOF):
			return false, err
		case n > 0:
			f.off += int64(n)
			ev.Kind, ev.Data, ev.Offset = LogOutput, f.buf[:n], f.off
		case gap > 0:
			f.off += gap
			ev.Kind, ev.Data, ev.Dropped, ev.Offset = LogDropped, nil, gap, f.off
		case end:
			log = nil
			continue
		default:
			return false, nil // nothing more yet
		}
		if err := f.emit(&ev); err != nil {
			return false, err
		}
	}
	ev.Kind, ev.Data, ev.Offset = LogStepEnded, nil, f.off
	if err := f.emit(&ev); err != nil {
		return false, err
	}
	f.next()
	return true, nil
}

// storedLogs delivers the logs of a run that is not executing from its
// log files: the steps of its record, then (for runs interrupted before
// their step was recorded) any further numbered log file.
func storedLogs(ctx context.Context, logsDir string, run *forge.Run, opts LogOptions, emit func(*LogEvent) error) error {
	var steps []forge.StepResult
	if run.Result != nil {
		steps = run.Result.Steps
	}
	f := newFollower(opts, emit)
	for {
		i := f.cur
		st := streamStep{Name: "(interrupted step)"}
		if i < len(steps) {
			st = streamStep{Name: steps[i].Name, Workflow: steps[i].Workflow, Skipped: steps[i].Skipped}
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
		if opts.Step != "" && st.Name != opts.Step {
			f.next()
		} else {
			var src logSource
			if file != nil {
				src = &fileLog{f: file}
			}
			_, err = f.deliver(ctx, st, src)
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
