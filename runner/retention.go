package runner

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/kod-forge/kod/forge"
)

// prune applies Config.Retention to repo: of its runs, newest first, the
// ones past the first Retention that are finished are deleted with their
// log directories (queued and running ones are never touched). The record
// goes first, so a crash in between leaves an orphan log directory, which
// pruneAll removes, rather than a run without its logs.
func (r *Runner) prune(ctx context.Context, repo string) {
	if r.cfg.Retention <= 0 {
		return
	}
	runs, err := r.store.ListRuns(ctx, repo, 0)
	if err != nil {
		r.log.Error("listing runs for the retention", "repo", repo, "err", err)
		return
	}
	if len(runs) <= r.cfg.Retention {
		return
	}
	deleted := 0
	for _, run := range runs[r.cfg.Retention:] {
		if !run.Status.Done() {
			continue
		}
		if err := r.store.DeleteRun(ctx, run.ID); err != nil && !errors.Is(err, forge.ErrNotFound) {
			r.log.Error("deleting an old run", "run", run.ID, "err", err)
			continue
		}
		if err := os.RemoveAll(filepath.Join(r.cfg.LogsDir, run.ID)); err != nil {
			r.log.Error("deleting the logs of an old run", "run", run.ID, "err", err)
		}
		if r.cfg.ArtifactsDir != "" {
			if err := os.RemoveAll(filepath.Join(r.cfg.ArtifactsDir, run.ID)); err != nil {
				r.log.Error("deleting the artifacts of an old run", "run", run.ID, "err", err)
			}
		}
		deleted++
	}
	if deleted > 0 {
		r.log.Info("deleted old runs", "repo", repo, "runs", deleted, "kept", r.cfg.Retention)
	}
}

// pruneAll applies the retention to every repository (the setting may have
// changed since the last start) and removes log and artifact directories
// of runs that no longer exist.
func (r *Runner) pruneAll(ctx context.Context) {
	repos, err := r.store.ListRepos(ctx)
	if err != nil {
		r.log.Error("listing repositories for the retention", "err", err)
		return
	}
	for _, repo := range repos {
		r.prune(ctx, repo.Name)
	}
	r.removeOrphans(ctx, r.cfg.LogsDir, "logs")
	if r.cfg.ArtifactsDir != "" {
		r.removeOrphans(ctx, r.cfg.ArtifactsDir, "artifacts")
	}
}

// removeOrphans removes the per-run directories of dir whose run no longer
// exists.
func (r *Runner) removeOrphans(ctx context.Context, dir, what string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.log.Error("listing run directories", "dir", dir, "err", err)
		}
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		_, err := r.store.GetRun(ctx, e.Name())
		if !errors.Is(err, forge.ErrNotFound) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			r.log.Error("deleting orphan "+what, "dir", e.Name(), "err", err)
		}
	}
}
