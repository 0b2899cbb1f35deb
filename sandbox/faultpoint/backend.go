package faultpoint

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/kod-forge/kod/sandbox"
)

// Backend is a sandbox.Backend that asks At at every backend point and
// fails calls on its say (see the package comment). Inner does the work.
type Backend struct {
	Inner sandbox.Backend
	At    Func

	mu    sync.Mutex
	armed map[string]error // run id -> error for the run's next call
}

// Arm makes the next call concerning run fail with err.
func (b *Backend) Arm(run string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.armed == nil {
		b.armed = map[string]error{}
	}
	b.armed[run] = err
}

// armedErr takes the armed error of run, if any.
func (b *Backend) armedErr(run string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.armed[run]
	delete(b.armed, run)
	return err
}

// before is asked first by every call: an armed failure, else the point
// when it lies before the inner call.
func (b *Backend) before(ctx context.Context, p Point, run string, step int) error {
	if err := b.armedErr(run); err != nil {
		return err
	}
	if p == "" || b.At == nil {
		return nil
	}
	return b.At(ctx, p, Site{Run: run, Step: step})
}

func (b *Backend) after(ctx context.Context, p Point, run string, step int) error {
	if b.At == nil {
		return nil
	}
	return b.At(ctx, p, Site{Run: run, Step: step})
}

// SetupRun implements sandbox.Backend; Setup lies after the inner call.
func (b *Backend) SetupRun(ctx context.Context, run *sandbox.RunSpec) error {
	if err := b.before(ctx, "", run.ID, -1); err != nil {
		return err
	}
	if err := b.Inner.SetupRun(ctx, run); err != nil {
		return err
	}
	return b.after(ctx, Setup, run.ID, -1)
}

// LoadWorkspace implements sandbox.Backend; Workspace lies after the inner
// call.
func (b *Backend) LoadWorkspace(ctx context.Context, run *sandbox.RunSpec, image string, tar io.Reader) error {
	if err := b.before(ctx, "", run.ID, -1); err != nil {
		return err
	}
	if err := b.Inner.LoadWorkspace(ctx, run, image, tar); err != nil {
		return err
	}
	return b.after(ctx, Workspace, run.ID, -1)
}

// StartStep implements sandbox.Backend; StepCreate lies before the inner
// call, StepStart after it.
func (b *Backend) StartStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) error {
	if err := b.before(ctx, StepCreate, run.ID, step.Index); err != nil {
		return err
	}
	if err := b.Inner.StartStep(ctx, run, step, out); err != nil {
		return err
	}
	return b.after(ctx, StepStart, run.ID, step.Index)
}

// WaitStep implements sandbox.Backend; StepRunning lies before the inner
// call, StepExit after it.
func (b *Backend) WaitStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) (sandbox.ExitState, error) {
	if err := b.before(ctx, StepRunning, run.ID, step.Index); err != nil {
		return sandbox.ExitState{}, err
	}
	exit, err := b.Inner.WaitStep(ctx, run, step)
	if err != nil {
		return exit, err
	}
	if err := b.after(ctx, StepExit, run.ID, step.Index); err != nil {
		return sandbox.ExitState{}, err
	}
	return exit, nil
}

// StopStep implements sandbox.Backend.
func (b *Backend) StopStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, grace time.Duration) error {
	if err := b.before(ctx, "", run.ID, step.Index); err != nil {
		return err
	}
	return b.Inner.StopStep(ctx, run, step, grace)
}

// DestroyStep implements sandbox.Backend; StepCleanup lies before the
// inner call.
func (b *Backend) DestroyStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	if err := b.before(ctx, StepCleanup, run.ID, step.Index); err != nil {
		return err
	}
	return b.Inner.DestroyStep(ctx, run, step)
}

// DestroyRun implements sandbox.Backend; RunCleanup lies before the inner
// call.
func (b *Backend) DestroyRun(ctx context.Context, run *sandbox.RunSpec) error {
	if err := b.before(ctx, RunCleanup, run.ID, -1); err != nil {
		return err
	}
	return b.Inner.DestroyRun(ctx, run)
}

// Sweep implements sandbox.Backend (no point: it concerns no one run).
func (b *Backend) Sweep(ctx context.Context, instance string, keep func(string) bool) ([]string, error) {
	return b.Inner.Sweep(ctx, instance, keep)
}

var _ sandbox.Backend = (*Backend)(nil)
