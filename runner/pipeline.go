package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/artifact"
	"github.com/kod-forge/kod/runner/cache"
	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox"
)

// keeper is the engine.Keeper of one executing run: caches through
// Config.Caches, artifacts into Config.Artifacts.
type keeper struct {
	x *execution

	mu       sync.Mutex
	restored map[string][]*cache.Restored // by workspace (workflow key)
}

// RestoreCaches implements engine.Keeper: each cache of wf starts from the
// branch's cache of its key, else the default branch's.
func (k *keeper) RestoreCaches(ctx context.Context, run *sandbox.RunSpec, wf *plan.Workflow) ([]sandbox.CacheMount, error) {
	x := k.x
	m := x.r.cfg.Caches
	if m == nil {
		return nil, errors.New("this server keeps no caches (its sandbox backend has none)")
	}
	repo, err := x.r.store.GetRepo(ctx, x.currentRepo(ctx))
	if err != nil {
		return nil, err
	}
	defaultBranch := ""
	if heads, ok := x.r.src.(Heads); ok {
		if b, _, ok, err := heads.DefaultBranch(ctx, repo.Name); err == nil && ok {
			defaultBranch = b
		}
	}
	var mounts []sandbox.CacheMount
	var done []*cache.Restored
	for i, c := range wf.Caches {
		r, err := m.Restore(ctx, run, cache.Want{RepoID: repo.ID, Branch: x.run.Branch, DefaultBranch: defaultBranch,
			Key: c.Key, Path: c.Path, Index: i, Image: x.r.cfg.DefaultImage})
		if err != nil {
			for _, r := range done {
				_ = m.Discard(context.WithoutCancel(ctx), run, r)
			}
			return nil, err
		}
		done = append(done, r)
		mounts = append(mounts, r.Mount())
	}
	k.mu.Lock()
	if k.restored == nil {
		k.restored = map[string][]*cache.Restored{}
	}
	k.restored[wf.Key] = done
	k.mu.Unlock()
	return mounts, nil
}

// EndCaches implements engine.Keeper.
func (k *keeper) EndCaches(ctx context.Context, run *sandbox.RunSpec, wf *plan.Workflow, success bool) error {
	k.mu.Lock()
	done := k.restored[wf.Key]
	delete(k.restored, wf.Key)
	k.mu.Unlock()
	m := k.x.r.cfg.Caches
	var errs []error
	for _, r := range done {
		if success {
			errs = append(errs, m.Save(ctx, run, r))
		} else {
			errs = append(errs, m.Discard(ctx, run, r))
		}
	}
	return errors.Join(errs...)
}

// KeepArtifacts implements engine.Keeper: the backend reads the matches
// out of the workspace, the artifact store keeps them (KOD_ARTIFACT_LIMIT).
func (k *keeper) KeepArtifacts(ctx context.Context, run *sandbox.RunSpec, st *plan.Step) error {
	x := k.x
	if x.r.cfg.Artifacts == nil {
		return errors.New("this server keeps no artifacts")
	}
	ar, err := sandbox.Artifacts(x.r.backend)
	if err != nil {
		return err
	}
	rc, err := ar.ReadArtifacts(ctx, run, st.Image, st.Artifacts)
	if err != nil {
		var se *sandbox.StepError
		if errors.As(err, &se) {
			return se
		}
		return fmt.Errorf("reading them from the workspace: %w", err)
	}
	defer rc.Close()
	_, err = x.r.cfg.Artifacts.Save(ctx, x.run.ID, artifact.Step{Name: st.Name, Index: st.Index}, forge.NowMillis(), rc)
	return err
}

var _ engine.Keeper = (*keeper)(nil)

// reuse prepares a failed-only re-run: the results of the steps of the
// workflows it takes from the run it repeats, by step index, with their
// logs and artifacts linked into this run. It returns nil for other runs.
func (x *execution) reuse(ctx context.Context) map[int]forge.StepResult {
	if x.run.RerunOf == "" || len(x.run.Reuse) == 0 {
		return nil
	}
	prev, err := x.r.store.GetRun(ctx, x.run.RerunOf)
	if err != nil {
		x.r.log.Warn("reading the run a re-run repeats; running every workflow", "run", x.run.ID, "rerunOf", x.run.RerunOf, "err", err)
		return nil
	}
	steps := ReusedSteps(prev, x.run.Reuse)
	if err := LinkReusedLogs(x.r.cfg.LogsDir, prev, x.run, steps); err != nil {
		x.r.log.Warn("linking the logs of reused steps", "run", x.run.ID, "err", err)
	}
	if x.r.cfg.Artifacts != nil {
		err := x.r.cfg.Artifacts.Link(ctx, prev.ID, x.run.ID, func(a *forge.Artifact) bool { _, ok := steps[a.StepIndex]; return ok })
		if err != nil {
			x.r.log.Warn("linking the artifacts of reused steps", "run", x.run.ID, "err", err)
		}
	}
	return steps
}

// reuses reports whether wf is a workflow this re-run takes as it was.
func (x *execution) reuses(wf *plan.Workflow) bool {
	return slices.Contains(x.run.Reuse, wf.Key)
}

// ServiceStarted implements engine.ServiceSink: a service's output is a
// pseudo-step "service: NAME" after the planned steps, with a log of its
// own (masked like a step's), not counted in the step limits.
func (rec *recorder) ServiceStarted(wf *plan.Workflow, svc *plan.Service, at time.Time) io.Writer {
	x := rec.x
	rec.mu.Lock()
	idx := len(rec.steps)
	rec.steps = append(rec.steps, forge.StepResult{
		ID: serviceStepID(wf, svc), Name: "service: " + svc.Name, Workflow: wf.FileLabel(),
		Status: forge.StepRunning, StartedAt: forge.Millis(at.UnixMilli()),
	})
	rec.logs = append(rec.logs, nil)
	if rec.services == nil {
		rec.services = map[*plan.Service]int{}
	}
	rec.services[svc] = idx
	rec.mu.Unlock()
	log, err := newStepLog(StepLogPath(x.r.cfg.LogsDir, x.run.ID, idx), x.r.cfg.LogCap, x.r.cfg.OutputCap, x.stream.changed.notify)
	so := &stepOutput{log: log, err: err}
	if err == nil {
		so.out = newMaskWriter(x.mask, log)
	}
	rec.mu.Lock()
	rec.logs[idx] = so
	rec.changedLocked(false)
	v := rec.version
	rec.mu.Unlock()
	rec.store(v)
	x.stream.addStep(streamStep{ID: serviceStepID(wf, svc), Name: "service: " + svc.Name, Workflow: wf.FileLabel()}, idx, log)
	if err != nil {
		return io.Discard
	}
	return so.out
}

// serviceStepID is the id of a service's pseudo-step: "<workflow
// key>:service-<name>", a ':' no planned step's id has.
func serviceStepID(wf *plan.Workflow, svc *plan.Service) string {
	return wf.Key + ":service-" + svc.Name
}

// ServiceEnded implements engine.ServiceSink.
func (rec *recorder) ServiceEnded(wf *plan.Workflow, svc *plan.Service, err error) {
	rec.mu.Lock()
	idx, ok := rec.services[svc]
	rec.mu.Unlock()
	if !ok {
		return
	}
	end := engine.StepEnd{Status: engine.StepCompleted, Ended: time.Now()}
	if err != nil {
		end.Status, end.Error = engine.StepFailed, err.Error()
	}
	rec.StepEnded(&plan.Step{Index: idx, ID: serviceStepID(wf, svc)}, end)
}

// fillReused makes the result of step idx the one the re-run takes from
// the run it repeats (its log and artifacts were linked by reuse).
func (rec *recorder) fillReused(idx int, st *forge.StepResult) {
	prev, ok := rec.reused[idx]
	st.Reused = true
	if !ok {
		return
	}
	st.Status, st.Success, st.Skipped = prev.Status, prev.Success, prev.Skipped
	st.Output, st.Error, st.ExitCode = prev.Output, prev.Error, prev.ExitCode
	st.StartedAt, st.CompletedAt, st.Duration = prev.StartedAt, prev.CompletedAt, prev.Duration
	if st.Status == "" {
		st.Status = forge.StepCompleted
	}
}

// addStep appends a step the plan did not list (a service) at idx and
// marks it running with its log.
func (s *runStream) addStep(st streamStep, idx int, log *stepLog) {
	s.mu.Lock()
	for len(s.steps) <= idx {
		s.steps = append(s.steps, streamStep{Status: forge.StepPending})
	}
	s.steps[idx] = st
	s.mu.Unlock()
	s.start(idx, log)
}
