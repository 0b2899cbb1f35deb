package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox/faultpoint"
)

// stateDelay is how long a step's start may wait before the run record
// stores it: starts within it share one write, so a wide run does not
// rewrite its record once per container. Ends are stored at once (with
// every start still waiting), and a run's final state always is.
const stateDelay = 100 * time.Millisecond

// recorder is the engine.Sink of one executing run: it keeps the state of
// every planned step, writes each step's log (masked, capped) and feeds
// the run's live stream, and keeps the run record in line with them.
type recorder struct {
	x *execution

	mu      sync.Mutex
	steps   []forge.StepResult // every planned step, plan order (index = plan.Step.Index)
	logs    []*stepOutput      // per step while it runs
	current *forge.CurrentStep // most recently started step still running
	used    int                // step output the record holds, bytes (outputAllowance)
	logFail bool               // a step's log could not be written
	version uint64             // bumped at every change
	timer   *time.Timer        // pending delayed write, nil if none
	// lastWrite is when a delayed change was last written.
	lastWrite time.Time

	storeMu sync.Mutex // one record write at a time
	stored  uint64     // version the record holds

	services map[*plan.Service]int    // index of each service's pseudo-step (pipeline.go)
	reused   map[int]forge.StepResult // results a failed-only re-run takes, by step index
}

// stepOutput is the output chain of a running step: container -> secret
// masking -> log (file, tail for the record, followers).
type stepOutput struct {
	log *stepLog
	out *maskWriter
	err error // the log could not be opened
}

// newRecorder lists every step of p as pending.
func newRecorder(x *execution, p *plan.Plan) *recorder {
	rec := &recorder{x: x}
	for _, wf := range p.Workflows {
		for _, st := range wf.Steps {
			rec.steps = append(rec.steps, forge.StepResult{
				ID: st.ID, Name: st.Name, Workflow: wf.FileLabel(), Needs: slices.Clone(st.Needs),
				Status: forge.StepPending, Output: "",
			})
		}
	}
	rec.logs = make([]*stepOutput, len(rec.steps))
	return rec
}

// streamSteps returns the planned steps as the live stream starts them.
func (rec *recorder) streamSteps() []streamStep {
	out := make([]streamStep, len(rec.steps))
	for i, st := range rec.steps {
		out[i] = streamStep{ID: st.ID, Name: st.Name, Workflow: st.Workflow, Status: forge.StepPending}
	}
	return out
}

// StepStarted implements engine.Sink.
func (rec *recorder) StepStarted(step *plan.Step, at time.Time) io.Writer {
	x := rec.x
	idx := step.Index
	log, err := newStepLog(StepLogPath(x.r.cfg.LogsDir, x.run.ID, idx), x.r.cfg.LogCap, x.r.cfg.OutputCap, x.stream.changed.notify)
	so := &stepOutput{log: log, err: err}
	if err == nil {
		so.out = newMaskWriter(x.mask, log)
	}
	rec.mu.Lock()
	st := &rec.steps[idx]
	st.Status = forge.StepRunning
	st.StartedAt = forge.Millis(at.UnixMilli())
	rec.logs[idx] = so
	if rec.current == nil || st.StartedAt >= rec.current.StartedAt {
		// Starts may reach the sink out of order: the latest start wins.
		rec.current = &forge.CurrentStep{Index: idx, Name: st.Name, Workflow: st.Workflow, StartedAt: st.StartedAt}
	}
	now := rec.changedLocked(true)
	v := rec.version
	rec.mu.Unlock()
	if now {
		rec.store(v)
	}
	x.stream.start(idx, log)
	if err != nil {
		x.r.log.Error("opening a step log", "run", x.run.ID, "step", step.ID, "err", err)
		return io.Discard
	}
	return so.out
}

// StepEnded implements engine.Sink: the step's log is completed, its
// result stored (with every change waiting), then followers learn it ended.
func (rec *recorder) StepEnded(step *plan.Step, end engine.StepEnd) {
	x := rec.x
	idx := step.Index
	rec.mu.Lock()
	so := rec.logs[idx]
	rec.logs[idx] = nil
	rec.mu.Unlock()
	var logErr error
	if so != nil && so.err == nil {
		logErr = errors.Join(so.out.Flush(), so.log.Close())
		if logErr != nil {
			x.r.log.Error("closing a step log", "run", x.run.ID, "step", step.ID, "err", logErr)
		}
	}
	rec.mu.Lock()
	st := &rec.steps[idx]
	rec.fill(st, so, end, logErr)
	if end.Reused {
		rec.fillReused(idx, st)
	}
	if rec.current != nil && rec.current.Index == idx {
		rec.current = rec.latestRunning()
	}
	rec.changedLocked(false)
	v := rec.version
	rec.mu.Unlock()
	faultpoint.Hit(context.Background(), faultpoint.OutputDrained, faultpoint.Site{Run: x.run.ID, Step: idx})
	rec.store(v)
	faultpoint.Hit(context.Background(), faultpoint.RecordStored, faultpoint.Site{Run: x.run.ID, Step: idx})
	x.stream.end(idx, st.Status, st.Skipped, st.Error)
}

// fill sets the outcome of st from end: the engine's status and reason,
// and the Kod fields as a sequential run always had them.
func (rec *recorder) fill(st *forge.StepResult, so *stepOutput, end engine.StepEnd, logErr error) {
	x := rec.x
	st.Status = forge.StepStatus(end.Status)
	st.Error = x.mask.String(end.Error)
	st.ExitCode = end.ExitCode
	if !end.Started.IsZero() {
		st.StartedAt = forge.Millis(end.Started.UnixMilli())
	}
	if !end.Ended.IsZero() {
		st.CompletedAt = forge.Millis(end.Ended.UnixMilli())
	} else {
		st.CompletedAt = forge.NowMillis()
	}
	if st.StartedAt != 0 && st.CompletedAt >= st.StartedAt {
		st.Duration = int64(st.CompletedAt - st.StartedAt)
	}
	if so != nil && so.log != nil {
		st.Output = so.log.TailWithin(x.r.outputAllowance(rec.used))
		rec.used += len(st.Output)
	}
	switch st.Status {
	case forge.StepCompleted:
		st.Success = true
	case forge.StepSkipped:
		st.Success, st.Skipped, st.Duration = true, true, 0
	}
	switch {
	case so != nil && so.err != nil && st.Error == "":
		st.Error = fmt.Sprintf("opening the step log: %v", so.err)
		st.Success, st.Status = false, forge.StepFailed
		rec.logFail = true
	case logErr != nil && st.Status == forge.StepCompleted:
		// The step went on (a full disk must not kill it) but its log is
		// cut: the user must not take it for a clean run.
		st.Error = "the step's log could not be written, its output is incomplete: " + storageReason(logErr)
		st.Success, st.Status = false, forge.StepFailed
		rec.logFail = true
	}
}

// latestRunning returns the most recently started step still running.
func (rec *recorder) latestRunning() *forge.CurrentStep {
	var c *forge.CurrentStep
	for i, st := range rec.steps {
		if st.Status == forge.StepRunning && (c == nil || st.StartedAt >= c.StartedAt) {
			c = &forge.CurrentStep{Index: i, Name: st.Name, Workflow: st.Workflow, StartedAt: st.StartedAt}
		}
	}
	return c
}

// changedLocked notes a change. A delayed one is to be stored now (it
// reports true) when no write happened within stateDelay, else by a timer
// at the end of that period, with whatever else changed meanwhile: a
// sequential run stores each start at once, a wide one a write per period.
func (rec *recorder) changedLocked(delayed bool) bool {
	rec.version++
	if !delayed || rec.timer != nil {
		return false
	}
	wait := stateDelay - time.Since(rec.lastWrite)
	if wait <= 0 {
		rec.lastWrite = time.Now()
		return true
	}
	rec.timer = time.AfterFunc(wait, func() {
		rec.mu.Lock()
		rec.timer = nil
		rec.lastWrite = time.Now()
		v := rec.version
		rec.mu.Unlock()
		rec.store(v)
	})
	return false
}

// store writes the record unless a write since covered version v. Writes
// that wait for each other share the latest state.
func (rec *recorder) store(v uint64) {
	rec.storeMu.Lock()
	defer rec.storeMu.Unlock()
	if rec.stored >= v {
		return
	}
	rec.mu.Lock()
	steps := slices.Clone(rec.steps)
	current := rec.current
	now := rec.version
	rec.mu.Unlock()
	x := rec.x
	_, err := x.r.store.UpdateRun(context.Background(), x.run.ID, func(s *forge.Run) error {
		if s.Status.Done() {
			return errRunEnded
		}
		if s.Result == nil {
			s.Result = &forge.Result{}
		}
		s.Result.Steps = steps
		s.CurrentStep = current
		return nil
	})
	switch {
	case err == nil || errors.Is(err, errRunEnded):
		rec.stored = now
	case !errors.Is(err, forge.ErrNotFound):
		// The next write (at the latest the final one) stores it.
		x.r.log.Error("storing step states", "run", x.run.ID, "err", err)
	}
}

// storeNow writes the record with the current state.
func (rec *recorder) storeNow() {
	rec.mu.Lock()
	v := rec.version + 1
	rec.version = v
	rec.mu.Unlock()
	rec.store(v)
}

// logFailed reports whether a step's log could not be written: the run
// fails even if its steps succeeded.
func (rec *recorder) logFailed() bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.logFail
}

// storageReason is the part of a storage error a user can act on ("no
// space left on device"), without the server's paths.
func storageReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}

var errRunEnded = errors.New("run already ended")

// final returns the steps as the final record holds them: a step the
// engine never reported (a run that failed before it ran) is cancelled
// with the run's reason.
func (rec *recorder) final(reason string) []forge.StepResult {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.timer != nil {
		rec.timer.Stop()
		rec.timer = nil
	}
	now := forge.NowMillis()
	for i := range rec.steps {
		st := &rec.steps[i]
		if st.Status.Done() {
			continue
		}
		if st.Status == forge.StepRunning {
			st.Status = forge.StepFailed
		} else {
			st.Status = forge.StepCancelled
		}
		st.Error = reason
		st.CompletedAt = now
		if st.Error == "" {
			st.Error = "the run ended before the step ran"
		}
	}
	rec.current = nil
	return slices.Clone(rec.steps)
}

var _ engine.Sink = (*recorder)(nil)
