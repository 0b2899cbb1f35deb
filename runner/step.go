package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/faultpoint"
)

// timeoutError is the cause of a step or workflow deadline.
type timeoutError struct {
	what    string // "step" or "workflow"
	seconds int
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%s timed out after %d s", e.what, e.seconds)
}

// runWorkflow runs the steps of wf in order under its timeout. It returns a
// non-nil error only when the whole run must stop (cancellation, shutdown).
// A failing step stops the workflow's later steps.
func (x *execution) runWorkflow(ctx context.Context, wf *workflow.Workflow) error {
	wfCtx, cancel := context.WithTimeoutCause(ctx, wf.Timeout, &timeoutError{"workflow", int(wf.Timeout / time.Second)})
	defer cancel()
	x.exports = nil
	for i := range wf.Steps {
		st := &wf.Steps[i]
		if err := context.Cause(ctx); err != nil {
			return err // cancelled or shutting down: later steps do not run
		}
		res := x.runStep(wfCtx, wf, st)
		faultpoint.Hit(ctx, faultpoint.OutputDrained, faultpoint.Site{Run: x.run.ID, Step: x.nextIdx - 1})
		x.appendStep(ctx, res)
		faultpoint.Hit(ctx, faultpoint.RecordStored, faultpoint.Site{Run: x.run.ID, Step: x.nextIdx - 1})
		if err := context.Cause(ctx); err != nil {
			return err
		}
		if !res.Success && !st.ContinueOnError {
			x.failed = true
			return nil
		}
	}
	return nil
}

// runStep runs one step in its own container and returns its result. The
// container is removed in the background; cleanup waits for it.
func (x *execution) runStep(ctx context.Context, wf *workflow.Workflow, st *workflow.Step) forge.StepResult {
	res := forge.StepResult{Name: st.Name, Workflow: wf.File}
	// Every step, skipped or not, takes the next index, so the index of a
	// step's log file is its position in the run record's steps.
	idx := x.nextIdx
	x.nextIdx++
	if !st.If.Eval(x.run.Branch, x.envMap(wf)) {
		res.Success, res.Skipped = true, true
		x.stream.addStep(streamStep{Name: st.Name, Workflow: wf.File, Skipped: true})
		return res
	}
	started := time.Now()
	spec := x.stepSpec(idx, wf, st)
	x.markCurrent(ctx, forge.CurrentStep{Index: idx, Name: st.Name, Workflow: wf.File, StartedAt: forge.NowMillis()})
	log, err := newStepLog(StepLogPath(x.r.cfg.LogsDir, x.run.ID, idx), x.r.cfg.LogCap, x.r.cfg.OutputCap, x.stream.changed.notify)
	if err != nil {
		x.stream.addStep(streamStep{Name: st.Name, Workflow: wf.File})
		res.Error = fmt.Sprintf("opening the step log: %v", err)
		return res
	}
	x.stream.addStep(streamStep{Name: st.Name, Workflow: wf.File, log: log})
	// The output chain: container -> secret masking -> log (file, tail for
	// the record, followers).
	out := newMaskWriter(x.mask, log)
	exit, runErr := x.runContainer(ctx, st, spec, out)
	logErr := errors.Join(out.Flush(), log.Close())
	if logErr != nil {
		x.r.log.Error("closing a step log", "run", x.run.ID, "err", logErr)
	}
	res.Output = log.TailWithin(x.r.outputAllowance(x.outputUsed))
	x.outputUsed += len(res.Output)
	res.Duration = time.Since(started).Milliseconds()
	switch {
	case runErr != nil:
		res.Error = runErr.Error()
	case exit.OOMKilled:
		res.Error = fmt.Sprintf("step was killed: out of memory (limit %d MiB)", spec.Limits.MemoryBytes>>20)
	case exit.ExitCode != 0:
		res.Error = fmt.Sprintf("step failed with exit code %d", exit.ExitCode)
	case logErr != nil:
		// The step went on (a full disk must not kill it) but its log is
		// cut: the user must not take it for a clean run.
		res.Error = "the step's log could not be written, its output is incomplete: " + storageReason(logErr)
	default:
		res.Success = true
	}
	res.Error = x.mask.String(res.Error)
	if runErr == nil || exit.ExitCode != 0 {
		code := exit.ExitCode
		res.ExitCode = &code
	}
	x.exports = append(x.exports, st.ExportValues(workflow.Vars{Branch: x.run.Branch, Repo: x.run.RepoName, Env: x.envMap(wf)})...)
	return res
}

// runContainer starts the step, waits for it under ctx's deadline and the
// step's timeout, and stops it (SIGTERM, SIGKILL after the grace) when one
// of them ends first. The step's timeout counts from the moment its
// container started: pulling the image and creating the container are
// bounded by the workflow's timeout only, so a slow engine (a loaded host,
// a large pull) neither eats a step's time nor stops it before its first
// line of output.
func (x *execution) runContainer(ctx context.Context, st *workflow.Step, spec *sandbox.StepSpec, out io.Writer) (sandbox.ExitState, error) {
	be := x.r.backend
	defer func() {
		x.removals.Add(1)
		go func() {
			defer x.removals.Done()
			rmCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
			defer cancel()
			if err := be.DestroyStep(rmCtx, x.spec, spec); err != nil {
				x.r.log.Error("removing a step container", "run", x.run.ID, "step", spec.Name, "err", err)
			}
		}()
	}()
	if err := be.StartStep(ctx, x.spec, spec, out); err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return sandbox.ExitState{}, cause
		}
		var se *sandbox.StepError
		if !errors.As(err, &se) {
			err = fmt.Errorf("starting the step: %w", err)
		} else {
			err = se
		}
		// The step never ran, so its log would be empty: say why there
		// (an image that cannot be pulled, an invalid step), so `logs`
		// shows it as well as the run record. out masks secrets.
		fmt.Fprintf(out, "kod: %s\n", err)
		return sandbox.ExitState{}, err
	}
	stepCtx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		stepCtx, cancel = context.WithTimeoutCause(ctx, st.Timeout, &timeoutError{"step", int(st.Timeout / time.Second)})
		defer cancel()
	}
	exit, err := be.WaitStep(stepCtx, x.spec, spec)
	if err == nil {
		return exit, nil
	}
	cause := context.Cause(stepCtx)
	if cause == nil {
		return exit, fmt.Errorf("waiting for the step: %w", err)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), x.r.cfg.StopGrace+time.Minute)
	defer cancel()
	if err := be.StopStep(stopCtx, x.spec, spec, x.r.cfg.StopGrace); err != nil {
		x.r.log.Error("stopping a step", "run", x.run.ID, "step", spec.Name, "err", err)
	}
	exit, _ = be.WaitStep(stopCtx, x.spec, spec)
	return exit, cause
}

// stepSpec builds the container spec of st.
func (x *execution) stepSpec(idx int, wf *workflow.Workflow, st *workflow.Step) *sandbox.StepSpec {
	vars := workflow.Vars{Branch: x.run.Branch, Repo: x.run.RepoName, Env: x.envMap(wf)}
	return &sandbox.StepSpec{
		Index:     idx,
		Name:      st.Name,
		Image:     x.r.imageFor(wf, st),
		Pull:      pullPolicy(x.r.cfg.Pull, wf.Pull, st.Pull),
		Command:   shellCommand(st.Script(vars)),
		Env:       x.env(wf, st, vars),
		WorkDir:   path.Join(sandbox.WorkspacePath, st.WorkingDir),
		Limits:    x.r.cfg.Limits,
		NoNetwork: wf.Network == sandbox.NetworkNone,
	}
}

// pullPolicy returns the most specific of the server's, the workflow's
// and the step's pull policies.
func pullPolicy(server sandbox.PullPolicy, wf, step string) sandbox.PullPolicy {
	switch {
	case step != "":
		return sandbox.PullPolicy(step)
	case wf != "":
		return sandbox.PullPolicy(wf)
	}
	return server
}

// envMap is the environment `if` conditions and {env.X} see: the workflow's
// env and the legacy exports of earlier steps.
func (x *execution) envMap(wf *workflow.Workflow) map[string]string {
	m := make(map[string]string, len(wf.Env)+len(x.exports))
	for _, e := range wf.Env {
		m[e.Name] = e.Value
	}
	for _, e := range x.exports {
		m[e.Name] = e.Value // expanded when their step ran
	}
	return m
}

// env is the container environment, later entries winning: workflow env,
// earlier exports, step env, the repository's secrets, then kod's own
// variables (reserved: a secret named like one of them does not replace it).
func (x *execution) env(wf *workflow.Workflow, st *workflow.Step, vars workflow.Vars) []string {
	var env []string
	for _, name := range slices.Sorted(maps.Keys(vars.Env)) {
		env = append(env, name+"="+vars.Env[name])
	}
	for _, e := range st.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	env = append(env, x.secretEnv()...)
	return append(env,
		"CI=true",
		"KOD_REPO="+x.run.RepoName,
		"KOD_BRANCH="+x.run.Branch,
		"KOD_COMMIT="+x.run.Commit,
		"KOD_RUN_ID="+x.run.ID,
		"KOD_WORKFLOW="+wf.File,
	)
}

// shellCommand runs script with `sh -e -c` after pointing stderr at stdout,
// so the step's output reaches the log in exactly the order it was written
// (container engines copy two streams with no order between them).
//
// Linux refuses a single argument longer than 128 KiB (MAX_ARG_STRLEN:
// "argument list too long"), so a script longer than argChunk is passed in
// pieces that the shell joins and runs with `set -e; eval`: the same shell
// language, options and empty positional parameters, for scripts up to the
// workflow file limit (argv and environment together may take a quarter of
// the stack limit, 2 MiB by default).
func shellCommand(script string) []string {
	if len(script) <= argChunk {
		return []string{"/bin/sh", "-c", `exec 2>&1; exec /bin/sh -e -c "$1"`, "sh", script}
	}
	cmd := []string{"/bin/sh", "-c", `exec 2>&1; s=; for p in "$@"; do s="$s$p"; done; set --; set -e; eval "$s"`, "sh"}
	for len(script) > 0 {
		n := min(argChunk, len(script))
		cmd = append(cmd, script[:n])
		script = script[n:]
	}
	return cmd
}

// argChunk is the longest script passed as one argument, bytes: well
// under the kernel's 128 KiB per argument.
const argChunk = 64 << 10

// storageReason is the part of a storage error a user can act on ("no
// space left on device"), without the server's paths.
func storageReason(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
