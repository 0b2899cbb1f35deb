package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

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

// workflowKey is the key of the workflow instance (plan.Workflow.Key) a
// recorded step belongs to: its id up to the first '.' (a planned step)
// or ':' (a service's pseudo-step); "" for records without ids.
func workflowKey(s forge.StepResult) string {
	if i := strings.IndexAny(s.ID, ".:"); i > 0 {
		return s.ID[:i]
	}
	return ""
}

// ReusableWorkflows returns the workflow instances (plan.Workflow.Key, in
// the order their first step appears) of a finished run whose every
// recorded step succeeded or was skipped by its condition, services
// included: the workflows a failed-only re-run takes as they were. A
// workflow with a failed or cancelled step is not listed, so it runs
// again; so is every workflow of a run that failed as a whole before its
// steps (no result) and of a record without step ids (kod before
// pipelines).
func ReusableWorkflows(run *forge.Run) []string {
	if run.Result == nil {
		return nil
	}
	ok := map[string]bool{}
	var order []string
	for _, s := range run.Result.Steps {
		key := workflowKey(s)
		if key == "" {
			return nil
		}
		prev, seen := ok[key]
		if !seen {
			order = append(order, key)
			prev = true
		}
		ok[key] = prev && s.Success
	}
	var out []string
	for _, w := range order {
		if ok[w] {
			out = append(out, w)
		}
	}
	return out
}

// ReusedSteps returns, by step index, the results of prev's planned steps
// that belong to the reused workflows, marked Reused: what a failed-only
// re-run records for the steps it skips (the plan of the same commit and
// files gives every step the same index). Services' pseudo-steps are left
// out: the re-run lists its own.
func ReusedSteps(prev *forge.Run, reuse []string) map[int]forge.StepResult {
	out := map[int]forge.StepResult{}
	if prev.Result == nil {
		return out
	}
	for i, s := range prev.Result.Steps {
		if strings.Contains(s.ID, ":") {
			continue
		}
		if slices.Contains(reuse, workflowKey(s)) {
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
