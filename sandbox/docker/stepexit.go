package docker

import (
	"context"
	"fmt"
	"math"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/kod-forge/kod/sandbox"
)

// WaitStep blocks until the step's container has exited and every byte of
// its output was written to the writer given to StartStep, then returns the
// exit code and whether the kernel OOM-killed it (for a step with a memory
// limit, also inferred from a SIGKILL exit that StopStep did not cause; see
// oomKilled). If ctx ends first it
// returns ctx.Err() and the step keeps running. If writing output failed
// (the writer returned an error; the rest of the output was discarded), the
// exit state is still returned, with that error. For a step this backend
// did not start (e.g. before a server restart) it waits for the container by
// name, without output.
func (d *Docker) WaitStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) (sandbox.ExitState, error) {
	if err := checkStep(run, step); err != nil {
		return sandbox.ExitState{}, err
	}
	name := stepName(run, step.Index)
	d.mu.Lock()
	st := d.steps[stepKey(run.ID, step.Index)]
	d.mu.Unlock()
	if st == nil {
		return d.waitUntracked(ctx, name)
	}
	for _, ch := range []chan struct{}{st.exited, st.outDone} {
		select {
		case <-ch:
		case <-ctx.Done():
			return sandbox.ExitState{}, ctx.Err()
		}
	}
	if st.waitErr != nil {
		return sandbox.ExitState{}, engineErr("wait for step "+name, st.waitErr)
	}
	state := sandbox.ExitState{ExitCode: int(st.res.StatusCode)}
	oom, err := d.oomKilled(ctx, st.id, state.ExitCode, !st.stopped.Load())
	if err != nil {
		return state, err
	}
	state.OOMKilled = oom
	if st.outErr != nil {
		return state, fmt.Errorf("docker: step %s: %w", name, st.outErr)
	}
	return state, nil
}

// waitUntracked waits for a step container known only by name.
func (d *Docker) waitUntracked(ctx context.Context, name string) (sandbox.ExitState, error) {
	waitC, errC := d.cli.ContainerWait(ctx, name, container.WaitConditionNotRunning)
	var res container.WaitResponse
	select {
	case res = <-waitC:
	case err := <-errC:
		if cerrdefs.IsNotFound(err) {
			return sandbox.ExitState{}, fmt.Errorf("docker: step %s does not exist", name)
		}
		if ctx.Err() != nil {
			return sandbox.ExitState{}, ctx.Err()
		}
		return sandbox.ExitState{}, engineErr("wait for step "+name, err)
	}
	state := sandbox.ExitState{ExitCode: int(res.StatusCode)}
	// Unknown whether StopStep killed it, so only the engine's word counts.
	oom, err := d.oomKilled(ctx, name, state.ExitCode, false)
	state.OOMKilled = oom
	return state, err
}

// oomKilled inspects the exited container for an OOM kill. The engine's
// own flag can miss one: on cgroup v1 the OOM notification is dropped when
// the container's cgroup is gone before it is handled, which happens when the
// step exits right after the kill (seen on Docker 20.10 about once in 15
// runs). So when guess is set (the backend did not signal the step itself), a
// SIGKILL exit status (137) of a container with a memory limit also counts as
// an OOM kill: nothing else in such a container sends SIGKILL short of the
// step's own `kill -9`.
func (d *Docker) oomKilled(ctx context.Context, id string, exitCode int, guess bool) (bool, error) {
	if exitCode == 0 {
		// A step that succeeded failed nothing, whatever a child went
		// through; skipping the inspect saves a round trip per step.
		return false, nil
	}
	info, err := d.cli.ContainerInspect(ctx, id)
	if err != nil {
		return false, engineErr(fmt.Sprintf("inspect step %.12s", id), err)
	}
	if info.State != nil && info.State.OOMKilled {
		return true, nil
	}
	limited := info.HostConfig != nil && info.HostConfig.Memory > 0
	if guess && limited && exitCode == 128+int(syscall.SIGKILL) {
		d.log.Debug("OOM kill inferred from exit status", "container", info.Name, "exit", exitCode)
		return true, nil
	}
	return false, nil
}

// StopStep sends SIGTERM to the step's processes (docker-init forwards it to
// the whole process group) and SIGKILL once grace has passed; grace <= 0
// means Config.StopGrace. The engine counts grace in whole seconds, so it is
// rounded up (minimum 1 s). It returns once the container has exited, at most
// about grace later. A step that already exited or was removed is not an
// error.
func (d *Docker) StopStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, grace time.Duration) error {
	if err := checkStep(run, step); err != nil {
		return err
	}
	if grace <= 0 {
		grace = d.cfg.StopGrace
	}
	secs := max(1, int(math.Ceil(grace.Seconds())))
	name := stepName(run, step.Index)
	d.mu.Lock()
	if st := d.steps[stepKey(run.ID, step.Index)]; st != nil {
		st.stopped.Store(true) // a SIGKILL after grace is ours, not the OOM killer's
	}
	d.mu.Unlock()
	err := d.cli.ContainerStop(ctx, name, container.StopOptions{Timeout: &secs})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return engineErr("stop step "+name, err)
}

// DestroyStep removes the step's container, killing it if still running, and
// stops following it. It keeps the workspace volume. A step that does not
// exist (never started, failed to start, already destroyed) is not an error.
func (d *Docker) DestroyStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	if err := checkStep(run, step); err != nil {
		return err
	}
	key := stepKey(run.ID, step.Index)
	d.mu.Lock()
	// A nil entry is a StartStep in progress; it notices the missing entry
	// once the engine answers and removes its container itself.
	st := d.steps[key]
	delete(d.steps, key)
	d.mu.Unlock()
	d.cpus.release(key)
	err := d.removeContainer(ctx, stepName(run, step.Index))
	if st != nil {
		st.stop()
	}
	return err
}

// forgetRun stops following every step of the run, in every workspace.
func (d *Docker) forgetRun(runID string) {
	d.forgetSteps(runID, func(string) bool { return true })
}

// forgetWorkspace stops following the steps of run's workspace.
func (d *Docker) forgetWorkspace(run *sandbox.RunSpec) {
	d.forgetSteps(run.ID, func(ws string) bool { return ws == run.Workspace })
}

// forgetSteps stops following the steps of run runID whose workspace
// matches, including steps still starting (they notice their missing entry
// and remove their container).
func (d *Docker) forgetSteps(runID string, match func(ws string) bool) {
	prefix := runID + "/"
	var states []*stepState
	d.mu.Lock()
	for k, st := range d.steps {
		ws := d.starting[k]
		if st != nil {
			ws = st.ws
		}
		if strings.HasPrefix(k, prefix) && match(ws) {
			delete(d.steps, k)
			d.cpus.release(k)
			if st != nil {
				states = append(states, st)
			}
		}
	}
	d.mu.Unlock()
	for _, st := range states {
		st.stop()
	}
}
