package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/kod-forge/kod/sandbox"
)

// labelStepName carries StepSpec.Name, for people reading `docker ps`.
const labelStepName = "dev.kod.step-name"

// stepState follows one started step container: a goroutine copies its
// output until the attach stream ends, another waits for its exit.
type stepState struct {
	id     string                 // container id
	ws     string                 // sandbox.RunSpec.Workspace of the step
	cancel context.CancelFunc     // ends the wait request
	attach types.HijackedResponse // output stream, closed by the copier or stop

	exited  chan struct{} // closed once res/waitErr are set
	res     container.WaitResponse
	waitErr error

	outDone chan struct{} // closed once outErr is set
	outErr  error

	stopped atomic.Bool // StopStep was called: a SIGKILL exit is not an OOM kill

	wg       sync.WaitGroup
	stopOnce sync.Once
}

// stop ends both goroutines (whether or not the container still runs) and
// waits for them.
func (st *stepState) stop() {
	st.stopOnce.Do(func() {
		st.cancel()
		st.attach.Close()
	})
	st.wg.Wait()
}

// StartStep makes sure step.Image is present (per step.Pull), creates the
// step container kod-<key>-<index> (see the package doc) and starts it, attached, so out receives
// the step's stdout and stderr, interleaved as the engine receives them,
// until the step ends. Its stdin is an empty pipe, closed once it started
// (reads get EOF at once). The container runs under docker-init (so signals
// reach the step's whole process group), with the run's workspace at
// sandbox.WorkspacePath, the run's network (none if the run has none or
// step.NoNetwork is set), no new privileges, the
// configured capabilities dropped and step.Limits applied (memory without
// extra swap). A container of the same name left by an earlier attempt is
// replaced. Image, pull and spec problems are *sandbox.StepError; on any
// error nothing is left running. out must not be used by the caller again
// until WaitStep has returned or DestroyStep was called.
func (d *Docker) StartStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) error {
	if err := checkStep(run, step); err != nil {
		return err
	}
	key := stepKey(run.ID, step.Index)
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("docker: backend closed")
	}
	if _, ok := d.steps[key]; ok {
		d.mu.Unlock()
		return fmt.Errorf("docker: step %d of run %s already started", step.Index, run.ID)
	}
	d.steps[key] = nil // reserved while starting
	d.starting[key] = run.Workspace
	d.mu.Unlock()

	st, err := d.startStep(ctx, run, step, out)
	d.mu.Lock()
	delete(d.starting, key)
	reserved, ok := d.steps[key]
	if err == nil && (!ok || reserved != nil || d.closed) {
		err = fmt.Errorf("docker: step %d of run %s was destroyed while starting", step.Index, run.ID)
	}
	if err != nil {
		if ok && reserved == nil {
			delete(d.steps, key)
		}
		d.mu.Unlock()
		d.cpus.release(key)
		d.releaseHolder(run, key)
		if st != nil {
			cctx, cancel := cleanupContext(ctx)
			defer cancel()
			err = errors.Join(err, d.removeContainer(cctx, st.id))
			st.stop()
		}
		return err
	}
	d.steps[key] = st
	d.mu.Unlock()
	return nil
}

// startStep does the work of StartStep. On error it has removed what it
// created; on success it returns the state of the running step.
func (d *Docker) startStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) (*stepState, error) {
	if err := d.ensureImage(ctx, step.Image, step.Pull); err != nil {
		return nil, err
	}
	id, err := d.createStep(ctx, run, step)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		// Created after ctx ended (see createContext): remove it now.
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return nil, errors.Join(err, d.removeContainer(cctx, id))
	}
	// The step's goroutines outlive ctx: they end with the container or
	// with DestroyStep.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	fail := func(err error) (*stepState, error) {
		cancel()
		cctx, ccancel := cleanupContext(ctx)
		defer ccancel()
		return nil, errors.Join(err, d.removeContainer(cctx, id))
	}
	// Attach and register the wait before starting, so neither the first
	// byte of output nor a quick exit is missed.
	attach, err := d.cli.ContainerAttach(sctx, id, container.AttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		return fail(engineErr("attach to step "+stepName(run, step.Index), err))
	}
	waitC, waitErrC := d.cli.ContainerWait(sctx, id, container.WaitConditionNextExit)
	select {
	case err := <-waitErrC: // the wait request itself was refused
		attach.Close()
		return fail(engineErr("wait for step "+stepName(run, step.Index), err))
	default:
	}
	st := &stepState{id: id, ws: run.Workspace, cancel: cancel, attach: attach, exited: make(chan struct{}), outDone: make(chan struct{})}
	st.wg.Add(2)
	go func() {
		defer st.wg.Done()
		defer close(st.outDone)
		st.outErr = copyOutput(out, attach.Reader)
		attach.Close()
	}()
	go func() {
		defer st.wg.Done()
		defer close(st.exited)
		// The step's network namespace is free once it exited.
		defer d.releaseHolder(run, stepKey(run.ID, step.Index))
		select {
		case st.res = <-waitC:
			if st.res.Error != nil && st.res.Error.Message != "" {
				st.waitErr = errors.New(st.res.Error.Message)
			}
		case st.waitErr = <-waitErrC:
		}
	}()
	if err := ctx.Err(); err != nil {
		st.stop()
		return fail(err)
	}
	// Once asked for, the start is seen through whatever happens to ctx: a
	// start request cut short can leave a container that ran and printed,
	// with its output thrown away by the removal below. A started step is
	// stopped by the caller the usual way (StopStep, WaitStep), which keeps
	// every byte it wrote.
	startCtx, cancelStart := cleanupContext(ctx)
	defer cancelStart()
	if err := d.cli.ContainerStart(startCtx, id, container.StartOptions{}); err != nil {
		st.stop()
		if cerrdefs.IsInvalidArgument(err) {
			err = &sandbox.StepError{Msg: "step container could not start", Err: err}
		} else {
			err = engineErr("start step "+stepName(run, step.Index), err)
		}
		return fail(err)
	}
	// The step's stdin is a pipe with nothing in it: closing our end
	// (StdinOnce) gives the step EOF at once, where /dev/null would be
	// seekable and a terminal would block.
	if err := attach.CloseWrite(); err != nil {
		d.log.Debug("closing step stdin", "container", stepName(run, step.Index), "err", err)
	}
	return st, nil
}

// createStep creates the step container and returns its id, replacing a
// leftover container of the same name once.
func (d *Docker) createStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) (_ string, err error) {
	cfg, hc := d.stepConfig(run, step)
	name := stepName(run, step.Index)
	key := stepKey(run.ID, step.Index)
	hc.Resources.CpusetCpus = d.cpus.take(key, step.Limits.NanoCPUs, d.engineCPUs(ctx))
	if hc.NetworkMode == container.NetworkMode(networkName(run)) {
		if mode := d.leaseHolder(run, key); mode != "" {
			hc.NetworkMode = mode
			defer func() {
				if err != nil {
					d.releaseHolder(run, key)
				}
			}()
		}
	}
	defer func() {
		if err != nil {
			d.cpus.release(key)
		}
	}()
	cctx, cancel, err := createContext(ctx)
	if err != nil {
		return "", err
	}
	defer cancel()
	for attempt := 0; ; attempt++ {
		created, err := d.cli.ContainerCreate(cctx, cfg, hc, nil, nil, name)
		if err == nil {
			for _, w := range created.Warnings {
				d.log.Debug("engine warning", "container", name, "warning", w)
			}
			return created.ID, nil
		}
		if cerrdefs.IsInvalidArgument(err) && hc.Resources.CpusetCpus != "" {
			// The engine cannot pin to the CPUs it reports (its cgroup owns
			// fewer): keep the quota alone from now on.
			d.log.Warn("the engine refused a step cpuset; steps keep their CPU quota only", "cpuset", hc.Resources.CpusetCpus, "err", err)
			d.cpus.disable()
			d.cpus.release(key)
			hc.Resources.CpusetCpus = ""
			continue
		}
		switch {
		case cerrdefs.IsConflict(err) && attempt == 0:
			d.log.Warn("replacing leftover step container", "container", name)
			if err := d.removeContainer(ctx, name); err != nil {
				return "", err
			}
		case cerrdefs.IsInvalidArgument(err):
			return "", &sandbox.StepError{Msg: "invalid step", Err: err}
		case cerrdefs.IsNotFound(err):
			// The image went away after ensureImage (e.g. pruned meanwhile).
			return "", &sandbox.StepError{Msg: fmt.Sprintf("image %q is not present", step.Image), Err: err}
		default:
			return "", engineErr("create step "+name, err)
		}
	}
}

// stepConfig builds the container and host configuration of a step.
func (d *Docker) stepConfig(run *sandbox.RunSpec, step *sandbox.StepSpec) (*container.Config, *container.HostConfig) {
	labels := runLabels(run)
	labels[sandbox.LabelStep] = strconv.Itoa(step.Index)
	if step.Name != "" {
		labels[labelStepName] = step.Name
	}
	env := make([]string, 0, len(sandbox.WorkspaceEnv)+len(step.Env)+1)
	env = append(env, sandbox.WorkspaceEnv...)
	env = append(env, step.Env...)
	// docker-init (tini) then signals the step's whole process group, so a
	// shell's children get SIGTERM too and a `trap ... TERM` runs at once.
	env = append(env, "TINI_KILL_PROCESS_GROUP=1")
	workDir := step.WorkDir
	if workDir == "" {
		workDir = sandbox.WorkspacePath
	}
	networkMode := container.NetworkMode("none")
	if run.Network != sandbox.NetworkNone && !step.NoNetwork {
		networkMode = container.NetworkMode(networkName(run))
	}
	var secOpt []string
	if !d.cfg.Security.AllowNewPrivileges {
		secOpt = []string{"no-new-privileges"}
	}
	res := container.Resources{NanoCPUs: step.Limits.NanoCPUs}
	if m := step.Limits.MemoryBytes; m > 0 {
		res.Memory = m
		res.MemorySwap = m // total of memory and swap: no swap on top
	}
	if p := step.Limits.PIDs; p > 0 {
		res.PidsLimit = &p
	}
	useInit := true
	cfg := &container.Config{
		Image:        step.Image,
		Cmd:          step.Command,
		Env:          env,
		WorkingDir:   workDir,
		Labels:       labels,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		OpenStdin:    true,
		StdinOnce:    true,
	}
	hc := &container.HostConfig{
		Init:        &useInit,
		Mounts:      append([]mount.Mount{workspaceMount(run)}, cacheMounts(run, step)...),
		NetworkMode: networkMode,
		SecurityOpt: secOpt,
		CapDrop:     d.cfg.Security.CapDrop,
		Runtime:     d.cfg.Security.Runtime,
		Resources:   res,
		// Output is captured through the attach stream; json logs on disk
		// would be a second, unbounded copy.
		LogConfig: container.LogConfig{Type: "none"},
	}
	return cfg, hc
}

// copyOutput demultiplexes the attach stream into out (stdout and stderr
// alike) until it ends. If out fails, the stream is still drained, so a
// broken log sink never blocks the step; the sink's first error is returned.
func copyOutput(out io.Writer, stream io.Reader) error {
	w := &sinkWriter{w: out}
	_, err := stdcopy.StdCopy(w, w, stream)
	if w.err != nil {
		return fmt.Errorf("write step output: %w", w.err)
	}
	if err != nil && !isClosedConn(err) {
		return fmt.Errorf("read step output: %w", err)
	}
	return nil
}

// isClosedConn reports the error of reading an attach stream that stop()
// closed, which is how output copying is cut short on purpose.
func isClosedConn(err error) bool {
	return errors.Is(err, net.ErrClosed)
}

// sinkWriter forwards to w until w fails, then discards.
type sinkWriter struct {
	w   io.Writer
	err error
}

func (s *sinkWriter) Write(p []byte) (int, error) {
	if s.err == nil {
		if _, err := s.w.Write(p); err != nil {
			s.err = err
		}
	}
	return len(p), nil
}
