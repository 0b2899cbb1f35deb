package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/workflow"
)

// Request asks for one run.
type Request struct {
	Repo    string
	Branch  string
	Commit  string        // full commit id
	Trigger forge.Trigger // push, manual or schedule
	Files   []string      // workflow files to run; empty = every file
	TokenID string        // who asked; "" for schedules
}

// Enqueue stores a queued run and wakes the dispatcher. The run record is
// durable before Enqueue returns, so it survives a restart.
func (r *Runner) Enqueue(ctx context.Context, req Request) (*forge.Run, error) {
	run := &forge.Run{
		ID:        forge.NewID(),
		RepoName:  req.Repo,
		Branch:    req.Branch,
		Commit:    req.Commit,
		Trigger:   req.Trigger,
		Status:    forge.RunQueued,
		CreatedAt: forge.NowMillis(),
		Files:     req.Files,
		TokenID:   req.TokenID,
	}
	if err := r.store.CreateRun(ctx, run); err != nil {
		return nil, fmt.Errorf("storing run: %w", err)
	}
	r.log.Info("run queued", "run", run.ID, "repo", run.RepoName, "branch", run.Branch, "commit", short(run.Commit), "trigger", run.Trigger)
	r.Wake()
	return run, nil
}

// OnPush queues one run per updated branch (deletions and non-branch refs
// are ignored) whose commit has workflow files that accept a push of that
// branch. Files that do not parse still queue the run, which then fails with
// the parse error, so the author sees it. Unless Config.KeepSuperseded,
// each new run supersedes (cancels) the older push runs of the same branch
// and workflow files that are still queued: only the newest commit of a
// busy branch gets built; runs already executing are left alone. The
// repository's schedules are re-read afterwards (the push may have changed
// the default branch). It returns lines for the pusher.
func (r *Runner) OnPush(ctx context.Context, repo, tokenID string, updates []forge.RefUpdate) ([]*forge.Run, []string) {
	defer r.sched.reconcileRepo(ctx, repo)
	var runs []*forge.Run
	var msgs []string
	for _, u := range updates {
		branch, ok := u.Branch()
		if !ok || u.IsDelete() {
			continue
		}
		files, err := r.src.WorkflowFiles(ctx, repo, u.New)
		if err != nil {
			r.log.Error("reading workflow files", "repo", repo, "commit", u.New, "err", err)
			msgs = append(msgs, fmt.Sprintf("kod: could not read workflow files of %s: no run queued", branch))
			continue
		}
		selected, steps, invalid := r.pushWorkflows(ctx, files, branch)
		if len(selected) == 0 {
			continue
		}
		if len(selected) > MaxRunFiles {
			msgs = append(msgs, fmt.Sprintf("kod: %d workflow files apply to a push of %s; a run may have at most %d: no run queued", len(selected), branch, MaxRunFiles))
			continue
		}
		for _, err := range invalid {
			msgs = append(msgs, fmt.Sprintf("kod: warning: %v (the run will fail)", err))
		}
		if steps > MaxRunSteps {
			msgs = append(msgs, fmt.Sprintf("kod: warning: the workflows for %s have %d steps; a run may have at most %d (the run will fail)", branch, steps, MaxRunSteps))
		}
		run, err := r.Enqueue(ctx, Request{Repo: repo, Branch: branch, Commit: u.New, Trigger: forge.TriggerPush, Files: selected, TokenID: tokenID})
		if err != nil {
			r.log.Error("queueing run", "repo", repo, "branch", branch, "err", err)
			msgs = append(msgs, fmt.Sprintf("kod: could not queue a run for %s", branch))
			continue
		}
		runs = append(runs, run)
		msgs = append(msgs, fmt.Sprintf("kod: queued workflow run %s for %s (%s)", run.ID, branch, displayPaths(selected)))
		if !r.cfg.KeepSuperseded {
			for _, old := range r.supersede(ctx, run) {
				msgs = append(msgs, fmt.Sprintf("kod: cancelled queued run %s of %s (superseded)", old, branch))
			}
		}
	}
	return runs, msgs
}

// supersede cancels the queued push runs older than run of the same
// repository, branch and workflow files, and returns their ids.
func (r *Runner) supersede(ctx context.Context, run *forge.Run) []string {
	queued, err := r.store.QueuedRuns(ctx)
	if err != nil {
		r.log.Error("reading the queue to supersede runs", "run", run.ID, "err", err)
		return nil
	}
	reason := "superseded by run " + run.ID
	var ids []string
	for _, q := range queued {
		if q.Seq >= run.Seq || q.RepoName != run.RepoName || q.Branch != run.Branch ||
			q.Trigger != forge.TriggerPush || !slices.Equal(q.Files, run.Files) {
			continue
		}
		final, err := r.store.UpdateRun(ctx, q.ID, func(x *forge.Run) error {
			if x.Status != forge.RunQueued {
				return errNotQueued // claimed meanwhile: it runs
			}
			finish(x, forge.RunCancelled, reason)
			return nil
		})
		if err != nil {
			if !errors.Is(err, errNotQueued) && !errors.Is(err, forge.ErrNotFound) {
				r.log.Error("superseding a queued run", "run", q.ID, "err", err)
			}
			continue
		}
		r.log.Info("queued run superseded", "run", q.ID, "by", run.ID, "repo", run.RepoName, "branch", run.Branch)
		r.notifyDone(ctx, final)
		ids = append(ids, q.ID)
	}
	return ids
}

// pushWorkflows returns the paths of files whose triggers accept a push of
// branch, their number of steps, and the parse errors of files that do not
// parse or could not be read (kept, so that their run reports why).
// The files are parsed within ParseTimeout (in all), or ctx's deadline if
// sooner; a file whose parse runs out of time counts as invalid.
func (r *Runner) pushWorkflows(ctx context.Context, files []File, branch string) (selected []string, steps int, invalid []error) {
	ctx, cancel := context.WithTimeout(ctx, ParseTimeout)
	defer cancel()
	for _, f := range files {
		wf, err := parseWithin(ctx, f, r.parseOptions())
		switch {
		case err != nil:
			invalid = append(invalid, err)
		case !acceptsPush(wf, branch):
			continue
		default:
			steps += len(wf.Steps)
		}
		selected = append(selected, f.Path)
	}
	return selected, steps, invalid
}

// displayPaths joins paths for a message, quoting those that hold control
// characters (their runs fail; the pusher's terminal must not interpret
// them).
func displayPaths(paths []string) string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p
		if forge.HasHidden(p) {
			out[i] = strconv.Quote(p)
		}
	}
	return strings.Join(out, ", ")
}

func acceptsPush(wf *workflow.Workflow, branch string) bool {
	if !wf.On.Set {
		return true // Kod: every push
	}
	for _, p := range wf.On.Push {
		if workflow.MatchBranch(p, branch) {
			return true
		}
	}
	return false
}

// Cancel stops a run: a queued run is cancelled at once; an executing one
// has its current step stopped (SIGTERM, then SIGKILL after the grace) and
// ends cancelled once its containers are removed. Cancelling a finished run
// is ErrConflict.
func (r *Runner) Cancel(ctx context.Context, id string) error {
	r.mu.Lock()
	cancel, running := r.active[id]
	r.mu.Unlock()
	if running {
		run, err := r.store.GetRun(ctx, id)
		if err != nil {
			return err
		}
		if run.Status.Done() { // finished, only cleaning up
			return forge.Conflict("Workflow run already finished")
		}
		cancel(errCancelled)
		return nil
	}
	var final *forge.Run
	_, err := r.store.UpdateRun(ctx, id, func(x *forge.Run) error {
		switch {
		case x.Status == forge.RunQueued:
			finish(x, forge.RunCancelled, errCancelled.Error())
			final = x
			return nil
		case x.Status.Done():
			return forge.Conflict("Workflow run already finished")
		}
		return errNotQueued
	})
	if err == errNotQueued {
		// Claimed between our look at active and the update: cancel it there.
		r.mu.Lock()
		cancel, running = r.active[id]
		r.mu.Unlock()
		if running {
			cancel(errCancelled)
		}
		return nil
	}
	if err == nil {
		r.notifyDone(ctx, final)
	}
	return err
}

// CancelRepo cancels every queued and executing run of repo (used before
// the repository is deleted; a rename lets runs go on under the new name).
func (r *Runner) CancelRepo(ctx context.Context, repo string) {
	runs, err := r.store.RunsWithStatus(ctx, forge.RunRunning, forge.RunQueued)
	if err != nil {
		r.log.Error("listing runs to cancel", "repo", repo, "err", err)
		return
	}
	for _, run := range runs {
		if run.RepoName == repo {
			_ = r.Cancel(ctx, run.ID)
		}
	}
}

func short(oid string) string {
	if len(oid) > 12 {
		return oid[:12]
	}
	return oid
}
