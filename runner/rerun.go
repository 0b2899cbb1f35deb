package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/kod-forge/kod/forge"
)

// Rerun queues a new run of prev's commit, branch and workflow files with
// trigger "rerun" and RerunOf = prev.ID (Kod API: POST
// /repos/:name/workflows/:id/rerun). With failedOnly, the workflows of
// prev that succeeded are listed in Reuse: the new run takes their results,
// logs and artifacts instead of running them (ReusableWorkflows). Errors:
// ErrConflict while prev is queued or running, or, with failedOnly, when
// nothing of prev failed.
func (r *Runner) Rerun(ctx context.Context, prev *forge.Run, failedOnly bool, tokenID string) (*forge.Run, error) {
	if !prev.Status.Done() {
		return nil, forge.Conflict("Workflow run is still %s", prev.Status)
	}
	run := &forge.Run{
		ID:        forge.NewID(),
		RepoName:  prev.RepoName,
		RepoID:    prev.RepoID,
		Branch:    prev.Branch,
		Commit:    prev.Commit,
		Trigger:   forge.TriggerRerun,
		Status:    forge.RunQueued,
		CreatedAt: forge.NowMillis(),
		Files:     slices.Clone(prev.Files),
		TokenID:   tokenID,
		RerunOf:   prev.ID,
	}
	if failedOnly {
		if prev.Status == forge.RunCompleted {
			return nil, forge.Conflict("Nothing failed in workflow run %s", prev.ID)
		}
		run.Reuse = ReusableWorkflows(prev)
	}
	if err := r.store.CreateRun(ctx, run); err != nil {
		return nil, fmt.Errorf("storing run: %w", err)
	}
	r.log.Info("run queued", "run", run.ID, "repo", run.RepoName, "branch", run.Branch, "commit", short(run.Commit), "trigger", run.Trigger, "rerunOf", prev.ID, "reuse", run.Reuse)
	r.Wake()
	return run, nil
}

// ReusableWorkflows returns the workflows (StepResult.Workflow values, in
// the order their first step appears) of a finished run whose every
// recorded step succeeded or was skipped by its condition: the workflows a
// failed-only re-run takes as they were. A workflow with a failed or
// cancelled step, or without any recorded step, is not listed, so it runs
// again; so is every workflow of a run that failed as a whole before its
// steps (no result).
func ReusableWorkflows(run *forge.Run) []string {
	if run.Result == nil {
		return nil
	}
	ok := map[string]bool{}
	var order []string
	for _, s := range run.Result.Steps {
		prev, seen := ok[s.Workflow]
		if !seen {
			order = append(order, s.Workflow)
			prev = true
		}
		ok[s.Workflow] = prev && s.Success
	}
	var out []string
	for _, w := range order {
		if ok[w] {
			out = append(out, w)
		}
	}
	return out
}

// ReusedSteps returns, by step index, the results of prev's steps that
// belong to the reused workflows, marked Reused: what a failed-only re-run
// records for the steps it skips. The engine integration stores them in
// place of running those steps (the plan of the same commit and files
// gives every step the same index).
func ReusedSteps(prev *forge.Run, reuse []string) map[int]forge.StepResult {
	out := map[int]forge.StepResult{}
	if prev.Result == nil {
		return out
	}
	for i, s := range prev.Result.Steps {
		if slices.Contains(reuse, s.Workflow) {
			s.Reused = true
			out[i] = s
		}
	}
	return out
}

// LinkReusedLogs gives run next the log files of the steps it reuses from
// prev: hard links, so deleting either run (retention) keeps the other's
// logs whole. Missing logs of prev are skipped.
func LinkReusedLogs(logsDir string, prev, next *forge.Run, steps map[int]forge.StepResult) error {
	var errs []error
	for i := range steps {
		src, dst := StepLogPath(logsDir, prev.ID, i), StepLogPath(logsDir, next.ID, i)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := os.Link(src, dst); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, os.ErrExist) {
			errs = append(errs, fmt.Errorf("linking the log of step %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
