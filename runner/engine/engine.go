// Package engine executes a compiled plan (runner/plan) over a
// sandbox.Backend: workflows in parallel, each in its own workspace and
// network; within a workflow, steps as a graph of needs. It reports what
// happens to a Sink and knows nothing of the store, the queue or records.
package engine

import (
	"io"
	"time"

	"github.com/kod-forge/kod/runner/plan"
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
