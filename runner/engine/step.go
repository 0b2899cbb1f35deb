package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
)

// cleanupTimeout bounds the removal of a step container or of a workflow
// instance's volume and network; removal runs on a context of its own so
// cancelled runs still clean up.
const cleanupTimeout = 2 * time.Minute

// TimeoutError is the cause of a step or workflow deadline; its message is
// the step's error ("step timed out after 30 s").
type TimeoutError struct {
	What    string // "step" or "workflow"
	Seconds int
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s timed out after %d s", e.What, e.Seconds)
}

// vars are the values legacy interpolation and `if` see for st, given the
// exports of the steps before it.
func (in *instance) vars(st *plan.Step, exports []workflow.EnvVar) workflow.Vars {
	m := make(map[string]string, len(st.Env)+len(exports))
	for _, e := range st.Env {
		m[e.Name] = e.Value
	}
	for _, e := range exports {
		m[e.Name] = e.Value // expanded when their step ran
	}
	t := in.x.p.Trigger
	return workflow.Vars{Branch: t.Branch, Repo: t.Repo, Env: m}
}

// legacy is the parsed form of st that resolves legacy placeholders and
// exports (workflow.Step.Script and ExportValues); a TOML step's script is
// returned as written.
func legacy(st *plan.Step) *workflow.Step {
	return &workflow.Step{Run: st.Script, Interpolate: st.Interpolate, Exports: st.Exports}
}

// stepSpec builds the container spec of st with vars (see vars).
func (in *instance) stepSpec(st *plan.Step, vars workflow.Vars) *sandbox.StepSpec {
	return &sandbox.StepSpec{
		Index:     st.Index,
		Name:      st.Name,
		Image:     st.Image,
		Pull:      st.Pull,
		Command:   plan.ShellCommand(st.Shell, legacy(st).Script(vars)),
		Env:       in.env(vars),
		WorkDir:   st.WorkDir,
		Limits:    st.Limits,
		NoNetwork: st.NoNetwork || in.wf.Network == sandbox.NetworkNone,
		Caches:    in.caches,
	}
}

// env is the container environment, later entries winning: the step's
// environment and earlier exports (sorted by name, exports winning), the
// repository's secrets, then kod's own variables (reserved: a secret named
// like one of them does not replace it).
func (in *instance) env(vars workflow.Vars) []string {
	var env []string
	for _, name := range slices.Sorted(maps.Keys(vars.Env)) {
		env = append(env, name+"="+vars.Env[name])
	}
	env = append(env, in.x.opts.Secrets...)
	t := in.x.p.Trigger
	return append(env,
		"CI=true",
		"KOD_REPO="+t.Repo,
		"KOD_BRANCH="+t.Branch,
		"KOD_COMMIT="+t.Commit,
		"KOD_RUN_ID="+t.RunID,
		"KOD_WORKFLOW="+in.wf.File,
	)
}

// runStep waits for a slot, runs the step's container and says how it
// ended. ctx is the workflow instance's (its timeout, fail_fast and the
// run's cancellation).
func (in *instance) runStep(ctx context.Context, st *plan.Step, spec *sandbox.StepSpec) StepEnd {
	x := in.x
	if x.opts.Slots != nil {
		if err := x.opts.Slots.Acquire(ctx, x.p.Trigger.RunID); err != nil {
			return interrupted(context.Cause(ctx), nil, time.Time{})
		}
		defer x.opts.Slots.Release()
	}
	started := time.Now()
	out := x.sink.StepStarted(st, started)
	if out == nil {
		out = io.Discard
	}
	exit, stopped, err := in.runContainer(ctx, st, spec, out)
	end := StepEnd{Started: started, Ended: time.Now()}
	switch {
	case stopped:
		return interrupted(err, &exit.ExitCode, started)
	case err != nil:
		end.Status, end.Error = StepFailed, err.Error()
	case exit.OOMKilled:
		end.Status = StepFailed
		end.Error = fmt.Sprintf("step was killed: out of memory (limit %d MiB)", spec.Limits.MemoryBytes>>20)
	case exit.ExitCode != 0:
		end.Status = StepFailed
		end.Error = fmt.Sprintf("step failed with exit code %d", exit.ExitCode)
	default:
		end.Status = StepCompleted
	}
	if err == nil || exit.ExitCode != 0 {
		code := exit.ExitCode
		end.ExitCode = &code
	}
	return in.keepArtifacts(ctx, st, end)
}

// interrupted is the end of a step stopped (or never started: zero
// started) because of cause: a timeout fails a step that started, anything
// else (cancel, fail_fast, shutdown, a workflow timeout before the step
// started) cancels it. code is its exit code if it ran.
func interrupted(cause error, code *int, started time.Time) StepEnd {
	end := StepEnd{Status: StepCancelled, Error: cause.Error(), Started: started}
	if !started.IsZero() {
		end.Ended = time.Now()
		var te *TimeoutError
		if errors.As(cause, &te) {
			end.Status = StepFailed
		}
	}
	if code != nil && *code != 0 {
		c := *code
		end.ExitCode = &c
	}
	return end
}

// runContainer starts the step, waits for it under ctx and the step's
// timeout, and stops it (SIGTERM, SIGKILL after the grace) when one of them
// ends first; the bool then reports that the error is the cause. The step's
// timeout counts from the moment its container started: pulling the image
// and creating the container are bounded by the workflow's timeout only,
// so a slow engine neither eats a step's time nor stops it before its
// first line of output. The container is removed in the background; Execute
// waits for the removals before it removes the workspace.
func (in *instance) runContainer(ctx context.Context, st *plan.Step, spec *sandbox.StepSpec, out io.Writer) (sandbox.ExitState, bool, error) {
	x := in.x
	be := x.be
	defer in.destroyStep(ctx, spec)
	if err := be.StartStep(ctx, in.spec, spec, out); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return sandbox.ExitState{}, true, cause
		}
		var se *sandbox.StepError
		if !errors.As(err, &se) {
			err = fmt.Errorf("starting the step: %w", err)
		} else {
			err = se
		}
		// The step never ran, so its output would be empty: say why there
		// (an image that cannot be pulled, an invalid step).
		fmt.Fprintf(out, "kod: %s\n", err)
		return sandbox.ExitState{}, false, err
	}
	stepCtx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithTimeoutCause(ctx, st.Timeout, &TimeoutError{"step", int(st.Timeout / time.Second)})
		defer cancel()
	}
	exit, err := be.WaitStep(stepCtx, in.spec, spec)
	if err == nil {
		return exit, false, nil
	}
	cause := context.Cause(stepCtx)
	if cause == nil {
		x.destroyNow(ctx, in.spec, spec)
		return exit, false, fmt.Errorf("waiting for the step: %w", err)
	}
	grace := x.opts.StopGrace
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace+time.Minute)
	defer cancel()
	if err := be.StopStep(stopCtx, in.spec, spec, grace); err != nil {
		x.log().Error("stopping a step", "run", in.spec.ID, "step", spec.Name, "err", err)
	}
	exit, err = be.WaitStep(stopCtx, in.spec, spec)
	if err != nil {
		x.log().Error("waiting for a stopped step", "run", in.spec.ID, "step", spec.Name, "err", err)
		x.destroyNow(ctx, in.spec, spec)
	}
	return exit, true, cause
}

// destroyNow removes a step whose exit is unknown before its end is
// reported, so none of its output reaches the sink after StepEnded.
func (x *execution) destroyNow(ctx context.Context, run *sandbox.RunSpec, spec *sandbox.StepSpec) {
	rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := x.be.DestroyStep(rmCtx, run, spec); err != nil {
		x.log().Error("removing a step container", "run", run.ID, "step", spec.Name, "err", err)
	}
}

// destroyStep removes the step container in the background.
func (in *instance) destroyStep(ctx context.Context, spec *sandbox.StepSpec) {
	x, run := in.x, in.spec
	in.removals.Add(1)
	go func() {
		defer in.removals.Done()
		rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := x.be.DestroyStep(rmCtx, run, spec); err != nil {
			x.log().Error("removing a step container", "run", run.ID, "step", spec.Name, "err", err)
		}
	}()
}
