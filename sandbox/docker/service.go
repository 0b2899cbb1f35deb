package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/kod-forge/kod/sandbox"
)

// Services are named kod-<run>[-<workspace>].svc-<name> and labelled like
// steps (run, instance, workspace) plus the role "service" and their name,
// so DestroyRun and Sweep remove them with the run's steps.
const labelService = "dev.kod.service"

// readyPoll is the pause between two runs of a service's ready command.
const readyPoll = 250 * time.Millisecond

// serviceTail is how many bytes of a service's last output are kept for
// the error of a service that exits or is not ready.
const serviceTail = 4096

// serviceTable follows the started services of a Docker backend. The zero
// value is ready to use.
type serviceTable struct {
	mu sync.Mutex
	m  map[string]*serviceState // key: container name
}

// serviceState follows one service: a goroutine copies its output to the
// caller's writer and keeps the tail.
type serviceState struct {
	id      string
	tail    tailBuffer
	outDone chan struct{}
	stop    func() // closes the attach stream and waits for the copier
}

func (t *serviceTable) put(name string, st *serviceState) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]*serviceState{}
	}
	if old, ok := t.m[name]; ok {
		select {
		case <-old.outDone: // removed with its run (DestroyRun, Sweep)
		default:
			return false
		}
	}
	t.m[name] = st
	return true
}

func (t *serviceTable) get(name string) *serviceState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[name]
}

func (t *serviceTable) take(name string) *serviceState {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.m[name]
	delete(t.m, name)
	return st
}

// runPrefix is the name prefix of a RunSpec's objects: kod-<run> or
// kod-<run>-<workspace>. Services and caches add a part after a '.', which
// neither run ids nor workspaces contain, so their names never collide
// with a step's kod-<run>-<workspace>-<index>.
func runPrefix(run *sandbox.RunSpec) string { return "kod-" + wsKey(run) }

// runNetwork is the network a RunSpec's steps and services share.
func runNetwork(run *sandbox.RunSpec) string { return networkName(run) }

// specLabels are runLabels plus the workspace label when the RunSpec has one.
func specLabels(run *sandbox.RunSpec) map[string]string {
	l := runLabels(run)
	if run.Workspace != "" {
		l[sandbox.LabelWorkspace] = run.Workspace
	}
	return l
}

func serviceName(run *sandbox.RunSpec, name string) string { return runPrefix(run) + ".svc-" + name }

// checkService rejects specs that would give unsafe names or aliases.
func checkService(run *sandbox.RunSpec, svc *sandbox.ServiceSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	if svc == nil {
		return errors.New("docker: nil ServiceSpec")
	}
	if svc.Name == "" || len(svc.Name) > 40 || strings.Trim(svc.Name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" || svc.Name[0] == '-' {
		return &sandbox.StepError{Msg: fmt.Sprintf("service name %q: use 1 to 40 of [a-z0-9-], not starting with '-'", svc.Name)}
	}
	if run.Network == sandbox.NetworkNone {
		return &sandbox.StepError{Msg: fmt.Sprintf("service %s: the workflow has no network (network = \"none\"), so steps could not reach it", svc.Name)}
	}
	return nil
}

// StartService implements sandbox.ServiceRunner: the service container
// kod-<run>[-<workspace>].svc-<name> runs on the run's network with the
// alias svc.Name, under docker-init, with the steps' hardening (no new
// privileges, the configured capabilities dropped, the configured runtime)
// and svc.Limits, without the workspace or any other mount. A leftover
// container of the same name is replaced.
func (d *Docker) StartService(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec, out io.Writer) error {
	if err := checkService(run, svc); err != nil {
		return err
	}
	name := serviceName(run, svc.Name)
	if err := d.ensureImage(ctx, svc.Image, svc.Pull); err != nil {
		return err
	}
	cfg, hc, nc := d.serviceConfig(run, svc)
	id, err := d.createNamed(ctx, name, svc.Image, cfg, hc, nc)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		cctx, cancel := cleanupContext(ctx)
		defer cancel()
		return errors.Join(err, d.removeContainer(cctx, id))
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	attach, err := d.cli.ContainerAttach(actx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		cancel()
		return fail(engineErr("attach to service "+name, err))
	}
	st := &serviceState{id: id, outDone: make(chan struct{})}
	go func() {
		defer close(st.outDone)
		_ = copyOutput(io.MultiWriter(out, &st.tail), attach.Reader)
		attach.Close()
	}()
	var once sync.Once
	st.stop = func() {
		once.Do(func() { cancel(); attach.Close() })
		<-st.outDone
	}
	if !d.svc.put(name, st) {
		st.stop()
		return fail(fmt.Errorf("docker: service %s of run %s already started", svc.Name, run.ID))
	}
	startCtx, cancelStart := cleanupContext(ctx)
	defer cancelStart()
	if err := d.cli.ContainerStart(startCtx, id, container.StartOptions{}); err != nil {
		d.svc.take(name)
		st.stop()
		if cerrdefs.IsInvalidArgument(err) {
			err = &sandbox.StepError{Msg: fmt.Sprintf("service %s could not start", svc.Name), Err: err}
		} else {
			err = engineErr("start service "+name, err)
		}
		return fail(err)
	}
	return nil
}

// serviceConfig builds the container, host and network configuration of a
// service: a step's, without the workspace, with the alias.
func (d *Docker) serviceConfig(run *sandbox.RunSpec, svc *sandbox.ServiceSpec) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	labels := specLabels(run)
	labels[labelRole] = "service"
	labels[labelService] = svc.Name
	var secOpt []string
	if !d.cfg.Security.AllowNewPrivileges {
		secOpt = []string{"no-new-privileges"}
	}
	res := container.Resources{NanoCPUs: svc.Limits.NanoCPUs}
	if m := svc.Limits.MemoryBytes; m > 0 {
		res.Memory, res.MemorySwap = m, m
	}
	if p := svc.Limits.PIDs; p > 0 {
		res.PidsLimit = &p
	}
	useInit := true
	cfg := &container.Config{
		Image:        svc.Image,
		Cmd:          svc.Command,
		Env:          append(append([]string(nil), svc.Env...), "TINI_KILL_PROCESS_GROUP=1"),
		Labels:       labels,
		Hostname:     svc.Name,
		AttachStdout: true,
		AttachStderr: true,
	}
	netName := runNetwork(run)
	hc := &container.HostConfig{
		Init:        &useInit,
		NetworkMode: container.NetworkMode(netName),
		SecurityOpt: secOpt,
		CapDrop:     d.cfg.Security.CapDrop,
		Runtime:     d.cfg.Security.Runtime,
		Resources:   res,
		LogConfig:   container.LogConfig{Type: "none"},
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName: {Aliases: []string{svc.Name}},
	}}
	return cfg, hc, nc
}

// createNamed creates a container named name, replacing a leftover of the
// same name once; spec errors are *sandbox.StepError.
func (d *Docker) createNamed(ctx context.Context, name, image string, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (string, error) {
	cctx, cancel, err := createContext(ctx)
	if err != nil {
		return "", err
	}
	defer cancel()
	for attempt := 0; ; attempt++ {
		created, err := d.cli.ContainerCreate(cctx, cfg, hc, nc, nil, name)
		switch {
		case err == nil:
			return created.ID, nil
		case cerrdefs.IsConflict(err) && attempt == 0:
			if err := d.removeContainer(cctx, name); err != nil {
				return "", err
			}
		case cerrdefs.IsInvalidArgument(err):
			return "", &sandbox.StepError{Msg: "invalid service " + name, Err: err}
		case cerrdefs.IsNotFound(err):
			return "", &sandbox.StepError{Msg: fmt.Sprintf("image %q is not present", image), Err: err}
		default:
			return "", engineErr("create "+name, err)
		}
	}
}

// WaitServiceReady implements sandbox.ServiceRunner: ready runs through
// the engine's exec every readyPoll (each attempt bounded by the time
// left) until it exits 0.
func (d *Docker) WaitServiceReady(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec, ready []string, timeout time.Duration) error {
	if err := checkService(run, svc); err != nil {
		return err
	}
	name := serviceName(run, svc.Name)
	st := d.svc.get(name)
	if st == nil {
		return fmt.Errorf("docker: service %s of run %s was not started", svc.Name, run.ID)
	}
	// tctx ends at the timeout; ctx's own end is told apart by ctx.Err().
	tctx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		tctx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	notReady := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return &sandbox.ServiceError{Service: svc.Name, Msg: fmt.Sprintf("was not ready after %s (its ready command never exited 0)", timeout), Log: st.tail.lines(20)}
	}
	for {
		info, err := d.cli.ContainerInspect(tctx, st.id)
		if err != nil {
			if tctx.Err() != nil {
				return notReady()
			}
			return engineErr("inspect service "+name, err)
		}
		if info.State == nil || !info.State.Running {
			code := 0
			if info.State != nil {
				code = info.State.ExitCode
			}
			// The output ends with the container; wait for its last bytes.
			select {
			case <-st.outDone:
			case <-time.After(5 * time.Second):
			}
			return &sandbox.ServiceError{Service: svc.Name, Msg: fmt.Sprintf("exited with code %d before it was ready", code), Log: st.tail.lines(20)}
		}
		if len(ready) == 0 {
			return nil
		}
		ok, err := d.execOnce(tctx, st.id, ready)
		if ok {
			return nil
		}
		if err != nil && tctx.Err() == nil {
			d.log.Debug("service ready command", "service", name, "err", err)
		}
		select {
		case <-tctx.Done():
			return notReady()
		case <-time.After(readyPoll):
		}
	}
}

// execOnce runs cmd in the container and reports whether it exited 0.
func (d *Docker) execOnce(ctx context.Context, id string, cmd []string) (bool, error) {
	ex, err := d.cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return false, err
	}
	resp, err := d.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return false, err
	}
	// Closing the connection when ctx ends unblocks the read below.
	stop := context.AfterFunc(ctx, resp.Close)
	_, _ = io.Copy(io.Discard, resp.Reader)
	stop()
	resp.Close()
	if err := ctx.Err(); err != nil {
		return false, err
	}
	insp, err := d.cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		return false, err
	}
	return !insp.Running && insp.ExitCode == 0, nil
}

// DestroyService implements sandbox.ServiceRunner.
func (d *Docker) DestroyService(ctx context.Context, run *sandbox.RunSpec, svc *sandbox.ServiceSpec) error {
	if err := checkService(run, svc); err != nil {
		return err
	}
	name := serviceName(run, svc.Name)
	err := d.removeContainer(ctx, name)
	if st := d.svc.take(name); st != nil {
		st.stop()
	}
	return err
}

// tailBuffer keeps the last serviceTail bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - serviceTail; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lines returns at most n last lines of the tail, without a final newline.
func (t *tailBuffer) lines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := bytes.TrimRight(t.buf, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

var _ sandbox.ServiceRunner = (*Docker)(nil)
