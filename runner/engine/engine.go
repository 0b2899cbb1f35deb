// Package engine executes a compiled plan (runner/plan) over a
// sandbox.Backend: workflows in parallel, each in its own workspace and
// network; within a workflow, steps as a graph of needs. It reports what
// happens to a Sink and knows nothing of the store, the queue or records.
package engine

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox"
)

// StepStatus is the state of one planned step.
type StepStatus string

const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepCompleted StepStatus = "completed"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	StepCancelled StepStatus = "cancelled"
)

// StepEnd is how a step ended.
type StepEnd struct {
	Status   StepStatus
	Error    string // why it failed, was skipped or cancelled ("needs 'build', which failed")
	ExitCode *int   // nil when the step never ran or its exit is unknown
	Started  time.Time
	Ended    time.Time
	// Reused: the step did not run; its workflow is one Options.Reuse
	// takes from the run this one re-runs (Status is StepCompleted).
	Reused bool
}

// Sink receives what happens during Execute. Calls for one step come in
// order StepStarted, StepOutput (through the writer), StepEnded; a skipped or
// cancelled step that never started gets only StepEnded. Calls for
// different steps may come from different goroutines at once.
type Sink interface {
	// StepStarted is called just before the step's container starts; the
	// returned writer receives the step's output (masked by the sink if it
	// wishes) until StepEnded.
	StepStarted(step *plan.Step, at time.Time) io.Writer
	// StepEnded is called once per planned step.
	StepEnded(step *plan.Step, end StepEnd)
}

// Options are what Execute needs besides the plan. The contract between the
// engine and its callers (the runner and local runs):
//
//	func Execute(ctx context.Context, p *plan.Plan, be sandbox.Backend, sink Sink, opts Options) Outcome
//
// Execute sets up one sandbox.RunSpec per workflow instance (ID =
// p.Trigger.RunID, Workspace = Workflow.Key), calls Prepare to load its
// workspace, runs the steps, and destroys every object it created before it
// returns, also when ctx is cancelled (each running step stopped with
// StopGrace). Every planned step gets exactly one StepEnded.
type Options struct {
	Instance  string        // server instance id (sandbox.RunSpec.Instance)
	Secrets   []string      // "NAME=value" entries given to every step (not to services unless listed)
	StopGrace time.Duration // SIGTERM -> SIGKILL on cancel and timeouts
	// Prepare loads the workflow instance's workspace (the commit's tree)
	// after its RunSpec was set up.
	Prepare func(ctx context.Context, run *sandbox.RunSpec, wf *plan.Workflow) error
	// Slots bounds step containers executing at once across every run of
	// the server (KOD_MAX_PARALLEL_STEPS), fair between runs; nil = no bound.
	Slots *Slots
	// Finished, when set, is called once every planned step has ended
	// (StepEnded was called for each), with the Outcome Execute is about
	// to return, and before the run's containers, volumes and networks are
	// removed: the caller stores the run's final state there, so people
	// see it without waiting for the removal.
	Finished func(Outcome)
	// MaxWorkspaces bounds the workflow instances of the plan set up at
	// once, each holding a workspace volume and a network (Docker's
	// default address pools give a host about 30 bridge networks, and a
	// matrix may have 64 instances); the others wait, pending, and start in
	// plan order as earlier ones end. 0 = DefaultMaxWorkspaces.
	MaxWorkspaces int
	// Log receives what the engine cannot report to the sink (a container
	// that could not be removed); nil = discarded.
	Log *slog.Logger
	// Keep is the caller's side of caches and artifacts; nil (local runs)
	// = steps run without caches and nothing is kept.
	Keep Keeper
	// Reuse reports the workflow instances a failed-only re-run takes as
	// they were (Run.Reuse): nothing of them runs, each of their steps
	// ends at once with StepEnd.Reused. nil = none.
	Reuse func(wf *plan.Workflow) bool
}

// Keeper keeps what outlives a workflow's steps. Execute calls
// RestoreCaches once the workspace is loaded and its services are ready,
// KeepArtifacts when a step with artifacts ended (as its ArtifactsWhen
// says) and EndCaches once every step of the instance ended and its
// containers are gone, before the workspace is removed.
type Keeper interface {
	// RestoreCaches prepares the workflow's caches (wf.Caches) in run and
	// returns how every step mounts them.
	RestoreCaches(ctx context.Context, run *sandbox.RunSpec, wf *plan.Workflow) ([]sandbox.CacheMount, error)
	// EndCaches saves the caches (success) or drops what the run wrote.
	EndCaches(ctx context.Context, run *sandbox.RunSpec, wf *plan.Workflow, success bool) error
	// KeepArtifacts copies the artifacts of st out of the workspace; an
	// error fails the step with its message.
	KeepArtifacts(ctx context.Context, run *sandbox.RunSpec, st *plan.Step) error
}

// ServiceSink is implemented by sinks that keep the output of services
// (Sink is asked for it by type assertion): ServiceStarted before the
// service's container starts, ServiceEnded once it is removed, with why it
// failed (nil when it served until the workflow ended).
type ServiceSink interface {
	ServiceStarted(wf *plan.Workflow, svc *plan.Service, at time.Time) io.Writer
	ServiceEnded(wf *plan.Workflow, svc *plan.Service, err error)
}

// Outcome is how a whole plan ended.
type Outcome struct {
	Success bool  // every workflow instance succeeded
	Err     error // a failure of the run as a whole (setup, cancellation cause); nil otherwise
}
