// Package faultpoint names the points of a run's lifecycle and lets tests
// stop a server at one of them to inject a fault there: cancel the run,
// kill the process, or make the container engine fail a call.
//
// Two ways in, both absent from release builds:
//
//   - Backend wraps a sandbox.Backend and asks a Func at every point that is
//     a backend call. Tests of code above the seam use it directly.
//   - Hit is called by the runner at the points no backend call marks
//     (queued, dispatched, output drained, record stored), and Wrap wraps the
//     server's backend. Without the build tag kodfaults both are empty
//     functions the compiler inlines away; with it they ask the test that
//     started the server, over the unix socket named by KOD_FAULT_SOCKET
//     (see Dial), what to do.
//
// A Func returning an error at a backend point makes that call fail with it;
// at a runner point it makes the next backend call of the run fail (the
// engine fails "the next call"), then calls work again.
package faultpoint

import (
	"context"
	"errors"
	"fmt"

	"github.com/kod-forge/kod/sandbox"
)

// Point is a moment of a run's lifecycle.
type Point string

// The points, in the order a one-step run passes them. What exists at each
// is what a fault there has to clean up.
const (
	// Queued: the run is stored as queued and the dispatcher is about to
	// claim it (runner hook).
	Queued Point = "queued"
	// Dispatched: the run is claimed and stored as running; nothing exists
	// on the engine yet (runner hook).
	Dispatched Point = "dispatched"
	// Setup: SetupRun created the workspace volume and network and has not
	// returned yet.
	Setup Point = "setup"
	// Workspace: LoadWorkspace filled the workspace and has not returned.
	Workspace Point = "workspace"
	// StepCreate: StartStep was called; the step's container does not exist
	// yet.
	StepCreate Point = "step-create"
	// StepStart: StartStep created and started the container, which runs;
	// the runner has not heard back.
	StepStart Point = "step-start"
	// StepRunning: the runner waits for the running step (WaitStep called).
	StepRunning Point = "step-running"
	// StepExit: the step exited and its output was copied; WaitStep has
	// not returned yet.
	StepExit Point = "step-exit"
	// OutputDrained: the step's log file is complete and closed; its result
	// is not in the record yet (runner hook).
	OutputDrained Point = "output-drained"
	// RecordStored: the step's result is in the run record (runner hook).
	RecordStored Point = "record-stored"
	// StepCleanup: DestroyStep was called; the container still exists.
	StepCleanup Point = "step-cleanup"
	// RunCleanup: the run's final state is stored and DestroyRun was
	// called; the run's objects still exist.
	RunCleanup Point = "run-cleanup"
)

// All lists every point in lifecycle order.
var All = []Point{Queued, Dispatched, Setup, Workspace, StepCreate, StepStart, StepRunning, StepExit, OutputDrained, RecordStored, StepCleanup, RunCleanup}

// SocketEnv names the unix socket of the test that controls a server built
// with the kodfaults tag. Unset, or in a release build: the points do
// nothing.
const SocketEnv = "KOD_FAULT_SOCKET"

// Site says where a point was reached.
type Site struct {
	Run  string // run id
	Step int    // step index, -1 for points of the run as a whole
}

// Func decides what happens at a point: it may block (the runner stops
// there), return nil (go on) or return an error (see the package comment).
type Func func(ctx context.Context, p Point, s Site) error

// Injected builds the error of an injected engine failure: it wraps
// sandbox.ErrUnavailable, like a real loss of the engine.
func Injected(p Point) error {
	return fmt.Errorf("%w: injected fault at %s", sandbox.ErrUnavailable, p)
}

// IsInjected reports whether err came from Injected.
func IsInjected(err error) bool {
	return errors.Is(err, sandbox.ErrUnavailable)
}
