package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
)

// execution is the state of one executing run.
type execution struct {
	r      *Runner
	run    *forge.Run
	stream *runStream // what log followers see
	rec    *recorder  // the engine's sink; nil until the plan is known

	secrets []forge.SecretValue // decrypted for this run, memory only
	mask    *masker             // masks the secrets; nil if none

	endOnce sync.Once
	repoMu  sync.Mutex // x.run.RepoName (see currentRepo)
}

// execute runs the run's plan and stores the outcome. The final state is
// stored and announced (OnRunDone) as soon as the last step ends; the
// run's containers, volumes and networks are removed after that, and
// execute returns only once they are gone, so the run keeps its
// concurrency slot until its resources are free.
func (r *Runner) execute(ctx context.Context, run *forge.Run, stream *runStream) {
	x := &execution{r: r, run: run, stream: stream}
	p, status, reason := x.compile(ctx)
	if p == nil {
		x.end(ctx, status, reason)
		return
	}
	x.rec.reused = x.reuse(ctx)
	opts := engine.Options{
		Keep:      &keeper{x: x},
		Reuse:     x.reuses,
		Instance:  r.cfg.Instance,
		Secrets:   x.secretEnv(),
		StopGrace: r.cfg.StopGrace,
		Prepare:   x.prepare,
		Slots:     r.slots,
		Log:       r.log,
		Finished: func(out engine.Outcome) {
			status, reason := x.outcome(ctx, out)
			x.end(ctx, status, reason)
		},
	}
	out := engine.Execute(ctx, p, r.backend, x.rec, opts)
	status, reason = x.outcome(ctx, out)
	x.end(ctx, status, reason) // when Finished was not called
}

// outcome is the final status of the run and, for failures of the run as
// a whole, why.
func (x *execution) outcome(ctx context.Context, out engine.Outcome) (forge.RunStatus, string) {
	switch {
	case out.Err != nil:
		return failure(ctx, out.Err)
	case !out.Success || x.rec.logFailed():
		return forge.RunFailed, ""
	}
	return forge.RunCompleted, ""
}

// end stores the final state with every step (once), ends the live stream
// and announces the run's end.
func (x *execution) end(ctx context.Context, status forge.RunStatus, reason string) {
	x.endOnce.Do(func() {
		r := x.r
		reason = x.mask.String(reason)
		final, err := x.storeEnd(ctx, status, reason)
		r.endStream(x.run.ID)
		if err != nil {
			if !errors.Is(err, forge.ErrNotFound) { // deleted with its repository
				r.log.Error("storing the end of a run", "run", x.run.ID, "err", err)
			}
			return
		}
		r.log.Info("run finished", "run", x.run.ID, "repo", x.run.RepoName, "status", final.Status, "ms", final.Result.Duration)
		r.notifyDone(context.WithoutCancel(ctx), final)
		r.prune(context.WithoutCancel(ctx), x.run.RepoName)
	})
}

// storeEnd stores the final state with every step result, trying again
// while the store refuses the write (a full disk, an unwritable file) until
// it succeeds or the runner stops (then the next start marks the run
// failed). The run keeps its concurrency slot meanwhile.
func (x *execution) storeEnd(ctx context.Context, status forge.RunStatus, reason string) (*forge.Run, error) {
	ctx = context.WithoutCancel(ctx)
	var steps []forge.StepResult
	if x.rec != nil {
		steps = x.rec.final(reason)
	}
	wait := 500 * time.Millisecond
	for {
		final, err := x.r.store.UpdateRun(ctx, x.run.ID, func(s *forge.Run) error {
			if steps != nil {
				if s.Result == nil {
					s.Result = &forge.Result{}
				}
				s.Result.Steps = slices.Clone(steps)
			}
			finish(s, status, reason)
			return nil
		})
		if err == nil || errors.Is(err, forge.ErrNotFound) {
			return final, err
		}
		x.r.log.Error("storing the end of a run; trying again", "run", x.run.ID, "err", err)
		select {
		case <-x.r.stopped:
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// compile reads the secrets and workflow files and compiles the run's
// plan; it lists every planned step in the record (pending) and the live
// stream. A nil plan comes with the run's final status and reason.
func (x *execution) compile(ctx context.Context) (*plan.Plan, forge.RunStatus, string) {
	// Secrets first: a wrong key fails the run at once, and the masker
	// covers every later error text.
	if err := x.loadSecrets(ctx); err != nil {
		st, reason := failure(ctx, err)
		return nil, st, reason
	}
	wfs, err := x.loadWorkflows(ctx)
	if err != nil {
		st, reason := failure(ctx, err)
		return nil, st, reason
	}
	names := make([]string, len(x.secrets))
	for i, s := range x.secrets {
		names[i] = s.Name
	}
	cfg := x.r.cfg
	p, err := plan.Compile(wfs, plan.Trigger{
		RunID: x.run.ID, Repo: x.run.RepoName, Branch: x.run.Branch, Commit: x.run.Commit,
		Event: string(x.run.Trigger), Secrets: names,
	}, plan.Defaults{Image: cfg.DefaultImage, Pull: cfg.Pull, Limits: cfg.Limits, CloneDepth: cfg.CloneDepth, MaxSteps: MaxRunSteps}, x.inputs(ctx))
	if le := (*plan.StepLimitError)(nil); err != nil && !errors.As(err, &le) {
		err = fmt.Errorf("invalid workflow: %w", err)
	}
	if err != nil {
		st, reason := failure(ctx, err)
		return nil, st, reason
	}
	if err := os.MkdirAll(x.logDir(), 0o700); err != nil {
		st, reason := failure(ctx, fmt.Errorf("creating the log directory: %w", err))
		return nil, st, reason
	}
	x.rec = newRecorder(x, p)
	x.stream.setPlan(x.rec.streamSteps())
	x.rec.storeNow()
	return p, "", ""
}

// inputs are what Compile reads at the run's commit besides the workflow
// files.
func (x *execution) inputs(ctx context.Context) plan.Inputs {
	fsrc, ok := x.r.src.(FileSource)
	if !ok {
		return plan.Inputs{}
	}
	repo := x.currentRepo(ctx)
	return plan.Inputs{ReadFile: func(p string) ([]byte, error) {
		return fsrc.ReadFile(ctx, repo, x.run.Commit, p)
	}}
}

// failure is the outcome of a run that stopped on err: when the run was
// cancelled or the server is stopping, err is a consequence ("context
// canceled" from git or the engine) and the cause is the reason.
func failure(ctx context.Context, err error) (forge.RunStatus, string) {
	if cause := context.Cause(ctx); cause != nil {
		return statusFor(cause), cause.Error()
	}
	return forge.RunFailed, err.Error()
}

func statusFor(cause error) forge.RunStatus {
	if errors.Is(cause, errCancelled) {
		return forge.RunCancelled
	}
	return forge.RunFailed
}

// loadWorkflows reads and parses the run's workflow files at its commit.
func (x *execution) loadWorkflows(ctx context.Context) ([]*workflow.Workflow, error) {
	files, err := x.r.src.WorkflowFiles(ctx, x.currentRepo(ctx), x.run.Commit)
	if err != nil {
		return nil, fmt.Errorf("reading workflow files at %s: %w", short(x.run.Commit), err)
	}
	if len(x.run.Files) > 0 {
		var picked []File
		for _, want := range x.run.Files {
			i := slices.IndexFunc(files, func(f File) bool { return f.Path == want })
			if i < 0 {
				return nil, fmt.Errorf("workflow file %s not found at commit %s", want, short(x.run.Commit))
			}
			picked = append(picked, files[i])
		}
		files = picked
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no workflow files in %s at commit %s", workflow.Dir, short(x.run.Commit))
	}
	if len(files) > MaxRunFiles {
		return nil, fmt.Errorf("%d workflow files in %s at commit %s; a run may have at most %d", len(files), workflow.Dir, short(x.run.Commit), MaxRunFiles)
	}
	var wfs []*workflow.Workflow
	var errs []string
	for _, f := range files {
		wf, err := f.Parse(x.r.parseOptions())
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		wfs = append(wfs, wf)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid workflow: %s", strings.Join(errs, "; "))
	}
	return wfs, checkRunSteps(wfs)
}

// prepare fills the workspace of one workflow instance (set up by the
// engine) with the run's commit: a git checkout at the instance's clone
// depth when the source makes one, else the tree (see writeWorkspace).
func (x *execution) prepare(ctx context.Context, spec *sandbox.RunSpec, wf *plan.Workflow) error {
	// The default image carries the archive into the volume (it is never
	// started), so a step image that cannot be pulled fails its own step.
	carrier := x.r.cfg.DefaultImage
	pr, pw := io.Pipe()
	archived := make(chan error, 1)
	repo := x.currentRepo(ctx)
	go func() {
		err := x.r.writeWorkspace(ctx, repo, x.run.Commit, x.run.Branch, wf.CloneDepth, pw)
		pw.CloseWithError(err)
		archived <- err
	}()
	err := x.r.backend.LoadWorkspace(ctx, spec, carrier, pr)
	pr.CloseWithError(errors.New("workspace load ended"))
	archiveErr := <-archived
	if err != nil {
		var se *sandbox.StepError
		if errors.As(err, &se) {
			return fmt.Errorf("preparing the workspace: %s", se.Error())
		}
		return fmt.Errorf("loading the workspace: %w", err)
	}
	if archiveErr != nil {
		return fmt.Errorf("archiving commit %s: %w", short(x.run.Commit), archiveErr)
	}
	return nil
}

func (x *execution) logDir() string { return filepath.Join(x.r.cfg.LogsDir, x.run.ID) }
