package runner

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kod-forge/kod/forge"
)

// errStepRestarted is the error of the step a restart interrupted.
const errStepRestarted = "the server restarted while the step was running"

// recover ends what a previous process left half-done: every run stored as
// running is marked failed with errRestarted (every step it was executing
// is recorded as failed with the output its log holds, every step still
// pending as cancelled), its log files are completed, and every container,
// volume and network labelled with this instance is removed, whatever
// workflow instance's workspace it belongs to (no run executes yet, so all
// of them are leftovers).
func (r *Runner) recover(ctx context.Context) error {
	running, err := r.store.RunsWithStatus(ctx, forge.RunRunning)
	if err != nil {
		return fmt.Errorf("listing interrupted runs: %w", err)
	}
	for _, run := range running {
		dir := filepath.Join(r.cfg.LogsDir, run.ID)
		if err := foldLeftoverRings(dir); err != nil {
			r.log.Error("completing the logs of an interrupted run", "run", run.ID, "err", err)
		}
		done, err := r.store.UpdateRun(ctx, run.ID, func(x *forge.Run) error {
			r.markInterrupted(x)
			finish(x, forge.RunFailed, errRestarted)
			return nil
		})
		if err != nil {
			return fmt.Errorf("marking run %s failed: %w", run.ID, err)
		}
		r.log.Warn("run interrupted by a restart", "run", run.ID, "repo", run.RepoName)
		r.notifyDone(ctx, done)
	}
	removed, err := r.backend.Sweep(ctx, r.cfg.Instance, func(string) bool { return false })
	if err != nil {
		r.log.Error("sweeping leftover containers", "err", err)
	} else if len(removed) > 0 {
		r.log.Info("removed leftover containers", "runs", removed)
	}
	return nil
}

// markInterrupted ends the steps of x a restart cut short: running ones
// failed with errStepRestarted and the tail of their log as output,
// pending ones cancelled. A record from before per-step state (steps
// appended as they ended) gets its current step appended instead.
func (r *Runner) markInterrupted(x *forge.Run) {
	if x.Result == nil || !hasStepStates(x.Result.Steps) {
		if c := x.CurrentStep; c != nil {
			r.recordInterrupted(x, c)
		}
		return
	}
	now := forge.NowMillis()
	used := recordOutput(x)
	for i := range x.Result.Steps {
		st := &x.Result.Steps[i]
		switch st.Status {
		case forge.StepRunning:
			st.Status, st.Success, st.Error = forge.StepFailed, false, errStepRestarted
			st.CompletedAt = now
			if st.StartedAt > 0 {
				st.Duration = int64(now - st.StartedAt)
			}
			st.Output = r.readTail(StepLogPath(r.cfg.LogsDir, x.ID, i), r.outputAllowance(used))
			used += len(st.Output)
		case forge.StepPending, "":
			st.Status, st.Success, st.Error = forge.StepCancelled, false, "the server restarted before the step ran"
			st.CompletedAt = now
		}
	}
}

// hasStepStates reports whether steps carry per-step state (ids): records
// written since the run plan lists every step from the start.
func hasStepStates(steps []forge.StepResult) bool {
	for _, st := range steps {
		if st.ID != "" {
			return true
		}
	}
	return false
}

// recordInterrupted appends the result of step c, cut short by a restart,
// with the tail of its log as output, when it is the next step of x.
func (r *Runner) recordInterrupted(x *forge.Run, c *forge.CurrentStep) {
	if x.Result == nil {
		x.Result = &forge.Result{Steps: []forge.StepResult{}}
	}
	if c.Index != len(x.Result.Steps) {
		return // the record and the step disagree: keep the record as it is
	}
	res := forge.StepResult{Name: c.Name, Workflow: c.Workflow, Error: errStepRestarted, Status: forge.StepFailed, StartedAt: c.StartedAt, CompletedAt: forge.NowMillis()}
	if c.StartedAt > 0 {
		res.Duration = int64(forge.NowMillis() - c.StartedAt)
	}
	res.Output = r.readTail(StepLogPath(r.cfg.LogsDir, x.ID, c.Index), r.outputAllowance(recordOutput(x)))
	x.Result.Steps = append(x.Result.Steps, res)
}

// readTail returns the last OutputCap bytes of a log file, marked like a
// live step's output, cut to keep bytes like TailWithin ("" when it
// cannot be read).
func (r *Runner) readTail(path string, keep int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	t := tailBuffer{ring: make([]byte, r.cfg.OutputCap)}
	off := max(0, st.Size()-int64(r.cfg.OutputCap))
	buf := make([]byte, st.Size()-off)
	n, _ := f.ReadAt(buf, off)
	t.written = off
	t.Write(buf[:n])
	return t.within(keep)
}
