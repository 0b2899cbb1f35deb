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
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
)

// cleanupTimeout bounds the removal of a run's containers, volume and
// network; it runs on a context of its own so cancelled runs still clean up.
const cleanupTimeout = 2 * time.Minute

// execution is the state of one executing run.
type execution struct {
	r       *Runner
	run     *forge.Run
	stream  *runStream // what log followers see
	spec    *sandbox.RunSpec
	exports []workflow.EnvVar // legacy env.NAME directives of earlier steps, expanded
	nextIdx int               // index of the next step container
	// outputUsed is the step output the run record holds, bytes (see
	// outputAllowance).
	outputUsed int
	failed     bool // a step failed without continue_on_error
	// steps are the results of the steps so far, as the record must hold
	// them.
	steps []forge.StepResult

	secrets []forge.SecretValue // decrypted for this run, memory only
	mask    *masker             // masks the secrets; nil if none

	// pending step removals, awaited before the run's objects go.
	removals sync.WaitGroup
}

// execute runs every workflow of run and stores the outcome. The final
// state is stored and announced (OnRunDone) as soon as the last step ends;
// the run's containers, volume and network are removed after that, and
// execute returns only once they are gone, so the run keeps its
// concurrency slot until its resources are free.
func (r *Runner) execute(ctx context.Context, run *forge.Run, stream *runStream) {
	x := &execution{r: r, run: run, stream: stream}
	status, reason := x.do(ctx)
	reason = x.mask.String(reason)
	defer x.cleanup(ctx)
	final, err := x.storeEnd(ctx, status, reason)
	r.endStream(run.ID)
	if err != nil {
		if !errors.Is(err, forge.ErrNotFound) { // deleted with its repository
			r.log.Error("storing the end of a run", "run", run.ID, "err", err)
		}
		return
	}
	r.log.Info("run finished", "run", run.ID, "repo", run.RepoName, "status", final.Status, "ms", final.Result.Duration)
	r.notifyDone(context.WithoutCancel(ctx), final)
	r.prune(context.WithoutCancel(ctx), run.RepoName)
}

// storeEnd stores the final state with every step result, trying again
// while the store refuses the write (a full disk, an unwritable file) until
// it succeeds or the runner stops (then the next start marks the run
// failed). The run keeps its concurrency slot meanwhile.
func (x *execution) storeEnd(ctx context.Context, status forge.RunStatus, reason string) (*forge.Run, error) {
	ctx = context.WithoutCancel(ctx)
	wait := 500 * time.Millisecond
	for {
		final, err := x.r.store.UpdateRun(ctx, x.run.ID, func(s *forge.Run) error {
			if x.steps != nil {
				if s.Result == nil {
					s.Result = &forge.Result{}
				}
				s.Result.Steps = slices.Clone(x.steps)
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

// do returns the final status and, for failures of the run as a whole, why.
func (x *execution) do(ctx context.Context) (forge.RunStatus, string) {
	// Secrets first: a wrong key fails the run at once, and the masker
	// covers every later error text.
	if err := x.loadSecrets(ctx); err != nil {
		return failure(ctx, err)
	}
	wfs, err := x.loadWorkflows(ctx)
	if err != nil {
		return failure(ctx, err)
	}
	network := sandbox.NetworkNone
	for _, wf := range wfs {
		if wf.Network != sandbox.NetworkNone {
			network = sandbox.NetworkBridge
		}
	}
	x.spec = &sandbox.RunSpec{ID: x.run.ID, Instance: x.r.cfg.Instance, Network: network}
	if err := x.prepare(ctx); err != nil {
		return failure(ctx, err)
	}
	for _, wf := range wfs {
		if err := x.runWorkflow(ctx, wf); err != nil {
			return statusFor(err), err.Error()
		}
	}
	if x.failed {
		return forge.RunFailed, ""
	}
	return forge.RunCompleted, ""
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

// prepare creates the workspace and network and fills the workspace with
// the tree at the run's commit, streamed from git archive.
func (x *execution) prepare(ctx context.Context) error {
	if err := os.MkdirAll(x.logDir(), 0o700); err != nil {
		return fmt.Errorf("creating the log directory: %w", err)
	}
	if err := x.r.backend.SetupRun(ctx, x.spec); err != nil {
		return fmt.Errorf("preparing the workspace: %w", err)
	}
	// The default image carries the archive into the volume (it is never
	// started), so a step image that cannot be pulled fails its own step.
	carrier := x.r.cfg.DefaultImage
	pr, pw := io.Pipe()
	archived := make(chan error, 1)
	repo := x.currentRepo(ctx)
	go func() {
		err := x.r.writeWorkspace(ctx, repo, x.run.Commit, x.run.Branch, x.r.cfg.CloneDepth, pw)
		pw.CloseWithError(err)
		archived <- err
	}()
	err := x.r.backend.LoadWorkspace(ctx, x.spec, carrier, pr)
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

// cleanup removes every object of the run on a context of its own.
func (x *execution) cleanup(ctx context.Context) {
	if x.spec == nil {
		return // nothing was set up
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	x.removals.Wait()
	// A failed removal is tried again: the engine may be back a moment
	// later, and the periodic sweep is the last line of defence, not the
	// plan.
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := x.r.backend.DestroyRun(ctx, x.spec)
		if err == nil {
			if attempt > 1 {
				x.r.log.Info("removed run objects", "run", x.run.ID, "attempts", attempt)
			}
			return
		}
		x.r.log.Error("removing run objects", "run", x.run.ID, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 15*time.Second)
	}
}

func (x *execution) logDir() string { return filepath.Join(x.r.cfg.LogsDir, x.run.ID) }

// imageFor returns the image a step runs in: its own, its workflow's, or
// the server's default.
func (r *Runner) imageFor(wf *workflow.Workflow, st *workflow.Step) string {
	switch {
	case st.Image != "":
		return st.Image
	case wf.Image != "":
		return wf.Image
	}
	return r.cfg.DefaultImage
}

// markCurrent records that step index is executing (currentStep).
func (x *execution) markCurrent(ctx context.Context, c forge.CurrentStep) {
	_, err := x.r.store.UpdateRun(context.WithoutCancel(ctx), x.run.ID, func(s *forge.Run) error {
		s.CurrentStep = &c
		return nil
	})
	if err != nil && !errors.Is(err, forge.ErrNotFound) {
		x.r.log.Error("storing the current step", "run", x.run.ID, "step", c.Name, "err", err)
	}
}

// appendStep records a finished step in the run record. The record gets
// every step result so far, so a result a failed write lost (a full disk)
// is stored by the next write that succeeds.
func (x *execution) appendStep(ctx context.Context, res forge.StepResult) {
	x.steps = append(x.steps, res)
	_, err := x.r.store.UpdateRun(context.WithoutCancel(ctx), x.run.ID, func(s *forge.Run) error {
		if s.Result == nil {
			s.Result = &forge.Result{}
		}
		s.Result.Steps = slices.Clone(x.steps)
		s.CurrentStep = nil
		return nil
	})
	if err != nil && !errors.Is(err, forge.ErrNotFound) {
		x.r.log.Error("storing a step result", "run", x.run.ID, "step", res.Name, "err", err)
	}
}
