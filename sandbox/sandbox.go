// Package sandbox is the seam between the workflow runner and whatever executes
// step containers. The runner speaks only the Backend interface over the
// backend-neutral RunSpec and StepSpec below; Docker is one implementation
// (sandbox/docker), and a Kubernetes or Nomad backend must be addable without
// touching the runner.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// WorkspacePath is where every step sees the run's workspace (the tree of the
// commit being built), and the default working directory of a step.
const WorkspacePath = "/workspace"

// Label keys put on every object a backend creates, so objects can be traced
// to their run and swept after a crash.
const (
	LabelManaged   = "dev.kod.managed"   // always "true"
	LabelInstance  = "dev.kod.instance"  // server instance id (see RunSpec.Instance)
	LabelRun       = "dev.kod.run"       // run id
	LabelStep      = "dev.kod.step"      // step index within the run, decimal
	LabelWorkspace = "dev.kod.workspace" // RunSpec.Workspace, when set
)

// Network modes a run may ask for.
const (
	NetworkBridge = ""     // a dedicated network per run (default)
	NetworkNone   = "none" // no network at all
)

// PullPolicy says when an image is pulled.
type PullPolicy string

const (
	PullIfNotPresent PullPolicy = "if-not-present" // default
	PullAlways       PullPolicy = "always"
	PullNever        PullPolicy = "never"
)

// RunSpec describes the per-run resources: a workspace volume shared by all
// steps and, unless Network is NetworkNone, a dedicated network.
//
// A run with several workflows has one RunSpec per workflow instance: the
// same ID, a different Workspace. Backends name and label every object by
// both, so two workflows of one run never share files or a network, and
// Sweep still finds every object by its run id.
type RunSpec struct {
	ID        string            // run id, [a-z0-9]
	Workspace string            // workflow instance key, [a-z0-9-], at most 40 bytes, alphanumeric at both ends (CheckWorkspace); "" for a run with one workspace
	Instance  string            // id of the server instance that owns the run
	Network   string            // NetworkBridge or NetworkNone
	Labels    map[string]string // extra labels; LabelRun/LabelInstance are added by the backend
	// Steps is how many steps the workspace is planned to run; 0 =
	// unknown. A backend may skip per-workspace preparations that only
	// pay off over several steps (sandbox/docker's network holder).
	Steps int
}

// Limits caps the resources of one step container. Zero means "no limit".
type Limits struct {
	MemoryBytes int64 // hard memory limit, bytes (swap is not added on top)
	NanoCPUs    int64 // CPU quota in units of 1e-9 CPUs (2e9 = two CPUs)
	PIDs        int64 // maximum number of processes/threads
}

// StepSpec is one step container: Command runs in Image with Env, in WorkDir
// (an absolute path inside the container, usually under WorkspacePath).
type StepSpec struct {
	Index   int    // position of the step in the run, 0-based; unique per run
	Name    string // human name, for logs and labels only
	Image   string // image reference, e.g. "alpine:3.20"
	Pull    PullPolicy
	Command []string // argv, e.g. {"/bin/sh", "-e", "-c", script}
	Env     []string // "NAME=value" entries; later entries win
	WorkDir string   // absolute path inside the container
	Limits  Limits
	// NoNetwork gives the step no network even when its run has one (a
	// workflow with network = "none" in a run with other workflows).
	NoNetwork bool
	// Caches are the run's restored caches (CacheStore.RestoreCache) this
	// step mounts; empty = none.
	Caches []CacheMount
}

// ExitState is how a step container ended.
type ExitState struct {
	ExitCode  int  // process exit status; 137 after SIGKILL
	OOMKilled bool // the kernel killed the step for exceeding its memory limit
}

// Backend runs steps in isolated containers. All Destroy methods are
// idempotent and safe to call after a failed or partial setup/start; callers
// run them with a context that is not cancelled with the run. A call cut
// short by its ctx returns only once nothing it asked the engine to create
// can still appear (objects being created are waited for), so the Destroy
// calls after it find every object: an engine finishes a create it received
// even when the client hangs up.
type Backend interface {
	// SetupRun creates the run's workspace and network. On error the caller
	// still calls DestroyRun.
	SetupRun(ctx context.Context, run *RunSpec) error
	// LoadWorkspace extracts the tar stream into the workspace. image is
	// an image the backend may use as a carrier (it is not run).
	LoadWorkspace(ctx context.Context, run *RunSpec, image string, tar io.Reader) error
	// StartStep creates and starts the step, copying its combined stdout and
	// stderr to out until the step ends. Each stream keeps the order it was
	// written in; the two are separate pipes, so lines written to stdout and
	// stderr within a few milliseconds of each other may swap (a script that
	// needs the exact order runs `exec 2>&1` first). Errors that concern the
	// step itself (unknown image, failed pull) are *StepError.
	StartStep(ctx context.Context, run *RunSpec, step *StepSpec, out io.Writer) error
	// WaitStep blocks until the step exits and all of its output was written
	// to out. If ctx ends first it returns ctx.Err() and the step keeps running.
	WaitStep(ctx context.Context, run *RunSpec, step *StepSpec) (ExitState, error)
	// StopStep asks the step to stop (SIGTERM to its processes) and kills it
	// after grace. It may return as soon as the signal is delivered or only
	// once the step has exited (Docker: the latter, so at most about grace
	// later); either way WaitStep then reports the exit.
	StopStep(ctx context.Context, run *RunSpec, step *StepSpec, grace time.Duration) error
	// DestroyStep removes the step container (killing it if needed).
	DestroyStep(ctx context.Context, run *RunSpec, step *StepSpec) error
	// DestroyRun removes every remaining object of the run.
	DestroyRun(ctx context.Context, run *RunSpec) error
	// Sweep removes every object labelled with instance whose run id is not
	// kept by keep. It returns the run ids it removed objects of.
	Sweep(ctx context.Context, instance string, keep func(runID string) bool) ([]string, error)
}

// StepError is a failure to start a step that is the step's fault (missing
// image, failed pull, invalid spec) rather than the backend's. Its message is
// meant for the user and goes into the step's error.
type StepError struct {
	Msg string
	Err error
}

func (e *StepError) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	return fmt.Sprintf("%s: %v", e.Msg, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ErrUnavailable wraps errors reaching the container engine itself.
var ErrUnavailable = errors.New("container engine unavailable")
