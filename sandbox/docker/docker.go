// Package docker implements sandbox.Backend on a Docker engine (API 1.41 or
// newer, negotiated). Every object it creates carries the sandbox labels and a
// deterministic name derived from the run id and workspace, so destroy calls
// are idempotent and a restarted server can find and sweep what an earlier
// one left behind. <key> is the run id, or <run>-<workspace> when
// sandbox.RunSpec.Workspace is set (each workflow instance of a run has its
// own volume and network, labelled sandbox.LabelWorkspace):
//
//	kod-<key>-ws       volume holding the workspace, mounted at sandbox.WorkspacePath
//	kod-<key>          bridge network of the workspace (absent with sandbox.NetworkNone)
//	kod-<key>-<index>  container of step <index> (indexes are unique per run)
package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/sandbox"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultStopGrace   = 10 * time.Second
	DefaultPullTimeout = 10 * time.Minute
)

// cleanupTimeout bounds teardown calls that run on a context detached from
// the caller's (carrier removal, removal after a failed start).
const cleanupTimeout = 30 * time.Second

// Config configures the Docker backend. The zero value is usable: the engine
// is found from the environment (DOCKER_HOST, DOCKER_CERT_PATH, ...).
type Config struct {
	// Host is the engine address, e.g. "unix:///var/run/docker.sock" or
	// "tcp://10.0.0.5:2376"; "" means DOCKER_HOST or the platform default.
	Host string
	// StopGrace is how long StopStep waits between SIGTERM and SIGKILL when
	// called with a grace <= 0. Zero means DefaultStopGrace.
	StopGrace time.Duration
	// PullTimeout bounds one image pull. Zero means DefaultPullTimeout.
	PullTimeout time.Duration
	// Security hardens every step container.
	Security Security
	// NetworkHolderImage is the image of the container that holds each
	// workspace network's namespace for the steps that run one after
	// another (see netHolder); it must have `sleep` and is never pulled.
	// "" gives every step its own network endpoint.
	NetworkHolderImage string
}

// Security is the hardening applied to step containers. The zero value is
// the secure default: no new privileges, DefaultCapDrop, the engine's runtime.
type Security struct {
	// CapDrop lists capabilities removed from the engine's default set, e.g.
	// "NET_RAW". nil means DefaultCapDrop(); a non-nil empty slice drops none.
	CapDrop []string
	// AllowNewPrivileges lets setuid binaries gain privileges (turns off the
	// no-new-privileges security option). Off by default.
	AllowNewPrivileges bool
	// Runtime is the OCI runtime steps run under, e.g. "runsc" for gVisor;
	// "" means the engine's default runtime.
	Runtime string
}

// DefaultCapDrop returns the capabilities removed from Docker's default set
// unless Security.CapDrop says otherwise. What stays (CHOWN, DAC_OVERRIDE,
// FOWNER, FSETID, KILL, SETGID, SETUID) is what package managers and build
// tools running as root in ordinary images need. Binding ports below 1024
// keeps working without NET_BIND_SERVICE because the engine sets
// ip_unprivileged_port_start=0 in each container's network namespace; without
// NET_RAW, ping works only where it uses ICMP datagram sockets (iputils,
// allowed by the engine's ping_group_range), not busybox's raw-socket ping.
func DefaultCapDrop() []string {
	return []string{"AUDIT_WRITE", "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT"}
}

// Docker is a sandbox.Backend backed by a Docker engine. It is safe for
// concurrent use. It keeps, per started step, the goroutines that copy the
// step's output and wait for its exit; DestroyStep, DestroyRun, Sweep and
// Close end them.
type Docker struct {
	cli *client.Client
	cfg Config
	log *slog.Logger
	svc serviceTable // started services (service.go)

	// pullImage performs one pull; tests replace it to observe single-flight.
	pullImage func(ctx context.Context, ref string) error

	mu    sync.Mutex
	steps map[string]*stepState // key: stepKey(run id, index)
	// starting holds the workspace of each steps entry that is nil (a
	// StartStep in progress), so DestroyRun of that workspace cancels it.
	starting map[string]string
	cpus     cpuSets              // CPUs of whole-CPU steps
	pulls    map[string]*pullCall // key: image reference
	closed   bool
	wg       sync.WaitGroup // pull and network holder goroutines
	// holders are the network holders by wsKey (see netHolder).
	holders map[string]*netHolder
}

// New connects a client to the engine described by cfg (without contacting
// it; see Ping) and returns the backend. log may be nil. It fails only on an
// invalid Config or client options (e.g. a malformed Host).
func New(cfg Config, log *slog.Logger) (*Docker, error) {
	if cfg.StopGrace < 0 {
		return nil, errors.New("docker: Config.StopGrace must not be negative")
	}
	if cfg.PullTimeout < 0 {
		return nil, errors.New("docker: Config.PullTimeout must not be negative")
	}
	if cfg.StopGrace == 0 {
		cfg.StopGrace = DefaultStopGrace
	}
	if cfg.PullTimeout == 0 {
		cfg.PullTimeout = DefaultPullTimeout
	}
	if cfg.Security.CapDrop == nil {
		cfg.Security.CapDrop = DefaultCapDrop()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.Host != "" {
		opts = append(opts, client.WithHost(cfg.Host))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: client: %w", err)
	}
	d := &Docker{
		cli:      cli,
		cfg:      cfg,
		log:      log.With("component", "sandbox/docker"),
		steps:    make(map[string]*stepState),
		starting: make(map[string]string),
		pulls:    make(map[string]*pullCall),
		holders:  make(map[string]*netHolder),
	}
	d.pullImage = d.pullOnce
	return d, nil
}

// Close stops following steps (their containers keep running; DestroyRun or
// Sweep removes them), cancels pulls in flight, waits for the backend's
// goroutines and closes the client. Calls after the first return nil.
func (d *Docker) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	steps := d.steps
	d.steps = make(map[string]*stepState)
	for _, p := range d.pulls {
		p.cancel()
	}
	d.mu.Unlock()
	for _, st := range steps {
		if st != nil { // nil: a StartStep in progress, which sees closed
			st.stop()
		}
	}
	d.wg.Wait()
	return d.cli.Close()
}

// Ping checks that the engine answers and returns the API version the
// client speaks with it after negotiation, e.g. "1.41". An unreachable
// engine gives an error wrapping sandbox.ErrUnavailable.
func (d *Docker) Ping(ctx context.Context) (apiVersion string, err error) {
	p, err := d.cli.Ping(ctx)
	if err != nil {
		return "", engineErr("ping", err)
	}
	d.cli.NegotiateAPIVersionPing(p)
	return d.cli.ClientVersion(), nil
}

// engineErr adds the operation to err and marks connection failures with
// sandbox.ErrUnavailable so callers can tell "engine down" from "step bad".
func engineErr(op string, err error) error {
	if client.IsErrConnectionFailed(err) {
		return fmt.Errorf("docker: %s: %w: %w", op, sandbox.ErrUnavailable, connErr{err})
	}
	return fmt.Errorf("docker: %s: %w", op, err)
}

// connErr is a failed connection to the engine told without the SDK's
// "error during connect: Put http://%2Fvar%2Frun%2Fdocker.sock/v1.41/...":
// the request URL (the socket path escaped, an API path) says nothing a
// reader can act on; the network error does ("dial unix ...: connect:
// no such file or directory").
type connErr struct{ err error }

func (e connErr) Error() string {
	var ue *url.Error
	if errors.As(e.err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return e.err.Error()
}

func (e connErr) Unwrap() error { return e.err }

// Object names. Run ids are [a-z0-9]+ and workspaces [a-z0-9-] with an
// alphanumeric at both ends (checked by checkRun), and step indexes are
// unique per run, so names of different runs, workspaces and kinds cannot
// collide: a step name ends in its decimal index after the last dash.
func volumeName(run *sandbox.RunSpec) string  { return "kod-" + wsKey(run) + "-ws" }
func networkName(run *sandbox.RunSpec) string { return "kod-" + wsKey(run) }
func stepName(run *sandbox.RunSpec, index int) string {
	return "kod-" + wsKey(run) + "-" + strconv.Itoa(index)
}
func stepKey(runID string, index int) string { return runID + "/" + strconv.Itoa(index) }

// wsKey is the run id, or <run>-<workspace> for a run with several
// workspaces.
func wsKey(run *sandbox.RunSpec) string {
	if run.Workspace == "" {
		return run.ID
	}
	return run.ID + "-" + run.Workspace
}

// checkRun rejects run specs that would give unsafe or ambiguous names.
func checkRun(run *sandbox.RunSpec) error {
	if run == nil {
		return errors.New("docker: nil RunSpec")
	}
	if run.ID == "" {
		return errors.New("docker: empty run id")
	}
	for _, c := range run.ID {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("docker: run id %q: only [a-z0-9] allowed", run.ID)
		}
	}
	if err := sandbox.CheckWorkspace(run.Workspace); err != nil {
		return fmt.Errorf("docker: run %s: %w", run.ID, err)
	}
	if run.Network != sandbox.NetworkBridge && run.Network != sandbox.NetworkNone {
		return fmt.Errorf("docker: run %s: unknown network mode %q", run.ID, run.Network)
	}
	return nil
}

// checkStep is checkRun plus a usable step.
func checkStep(run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	if err := checkRun(run); err != nil {
		return err
	}
	if step == nil || step.Index < 0 {
		return errors.New("docker: need a StepSpec with Index >= 0")
	}
	return nil
}

// runLabels returns run.Labels plus the managed, instance, run and (when
// set) workspace labels, which win over extra labels of the same key.
func runLabels(run *sandbox.RunSpec) map[string]string {
	l := make(map[string]string, len(run.Labels)+4)
	maps.Copy(l, run.Labels)
	l[sandbox.LabelManaged] = "true"
	l[sandbox.LabelInstance] = run.Instance
	l[sandbox.LabelRun] = run.ID
	delete(l, sandbox.LabelWorkspace)
	if run.Workspace != "" {
		l[sandbox.LabelWorkspace] = run.Workspace
	}
	return l
}

// cleanupContext returns a context for teardown that survives the
// cancellation of ctx but not forever.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
}

// createContext returns the context of an engine call that creates an
// object (volume, network, container). The engine finishes a create it has
// received even when the client hangs up, so a create cut short by the
// caller's cancellation could make its object appear after the caller's
// clean-up looked for it (a cancel right as a run starts left its network
// behind this way). A create therefore runs to its answer, bounded by
// createTimeout, and the caller checks ctx once it knows what exists. It
// fails at once if ctx has already ended: then nothing is sent.
func createContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	return cctx, cancel, nil
}

// createTimeout bounds one create call that runs on its own context (see
// createContext); generous, as a loaded engine is slow to create.
const createTimeout = 2 * time.Minute

var _ sandbox.Backend = (*Docker)(nil)
