// Package sandboxtest provides an in-memory sandbox.Backend for tests of
// code above the seam (runner logic, API). It executes nothing: each step's
// behaviour is a Go function. The Docker backend itself is tested against
// the real engine in sandbox/docker.
package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/kod-forge/kod/sandbox"
)

// StepFunc plays a step: it writes output to out and returns the exit code.
// ctx ends when the step is stopped or destroyed.
type StepFunc func(ctx context.Context, step *sandbox.StepSpec, out io.Writer) int

// Fake is an in-memory sandbox.Backend. The zero value is not usable; call
// New.
type Fake struct {
	run StepFunc

	mu      sync.Mutex
	runs    map[string]bool // set-up runs not yet destroyed
	steps   map[string]*fakeStep
	started []sandbox.StepSpec
	// FailSetup, when set, makes SetupRun fail with it.
	FailSetup error
	// StartDelay makes StartStep take that long (an image pull, a slow
	// engine); it returns ctx's error if ctx ends first.
	StartDelay time.Duration
	// FailStart, when set, is StartStep's error for the steps it returns
	// non-nil for (an image that cannot be pulled...).
	FailStart func(step *sandbox.StepSpec) error
}

type fakeStep struct {
	cancel context.CancelFunc
	done   chan struct{}
	code   int
}

// New returns a Fake whose steps behave as run (nil: print nothing, exit 0).
func New(run StepFunc) *Fake {
	if run == nil {
		run = func(context.Context, *sandbox.StepSpec, io.Writer) int { return 0 }
	}
	return &Fake{run: run, runs: map[string]bool{}, steps: map[string]*fakeStep{}}
}

func key(run *sandbox.RunSpec, step *sandbox.StepSpec) string {
	return fmt.Sprintf("%s/%d", run.ID, step.Index)
}

// SetupRun implements sandbox.Backend.
func (f *Fake) SetupRun(ctx context.Context, run *sandbox.RunSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[run.ID] = true
	return f.FailSetup
}

// LoadWorkspace implements sandbox.Backend by draining the archive.
func (f *Fake) LoadWorkspace(ctx context.Context, run *sandbox.RunSpec, image string, tar io.Reader) error {
	_, err := io.Copy(io.Discard, tar)
	return err
}

// StartStep implements sandbox.Backend.
func (f *Fake) StartStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) error {
	if f.FailStart != nil {
		if err := f.FailStart(step); err != nil {
			return err
		}
	}
	if f.StartDelay > 0 {
		select {
		case <-time.After(f.StartDelay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	stepCtx, cancel := context.WithCancel(context.Background())
	st := &fakeStep{cancel: cancel, done: make(chan struct{})}
	f.mu.Lock()
	f.steps[key(run, step)] = st
	f.started = append(f.started, *step)
	f.mu.Unlock()
	go func() {
		defer close(st.done)
		st.code = f.run(stepCtx, step, out)
		if stepCtx.Err() != nil && st.code == 0 {
			st.code = 143 // stopped by SIGTERM
		}
	}()
	return nil
}

// WaitStep implements sandbox.Backend.
func (f *Fake) WaitStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) (sandbox.ExitState, error) {
	f.mu.Lock()
	st := f.steps[key(run, step)]
	f.mu.Unlock()
	if st == nil {
		return sandbox.ExitState{}, errors.New("fake: no such step")
	}
	select {
	case <-st.done:
		return sandbox.ExitState{ExitCode: st.code}, nil
	case <-ctx.Done():
		return sandbox.ExitState{}, ctx.Err()
	}
}

// StopStep implements sandbox.Backend.
func (f *Fake) StopStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, grace time.Duration) error {
	f.mu.Lock()
	st := f.steps[key(run, step)]
	f.mu.Unlock()
	if st != nil {
		st.cancel()
		<-st.done
	}
	return nil
}

// DestroyStep implements sandbox.Backend.
func (f *Fake) DestroyStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) error {
	f.mu.Lock()
	st := f.steps[key(run, step)]
	delete(f.steps, key(run, step))
	f.mu.Unlock()
	if st != nil {
		st.cancel()
		<-st.done
	}
	return nil
}

// DestroyRun implements sandbox.Backend.
func (f *Fake) DestroyRun(ctx context.Context, run *sandbox.RunSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.runs, run.ID)
	return nil
}

// Sweep implements sandbox.Backend over the runs not yet destroyed.
func (f *Fake) Sweep(ctx context.Context, instance string, keep func(string) bool) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var removed []string
	for id := range f.runs {
		if !keep(id) {
			delete(f.runs, id)
			removed = append(removed, id)
		}
	}
	sort.Strings(removed)
	return removed, nil
}

// Leftovers returns the runs and steps not destroyed yet.
func (f *Fake) Leftovers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id := range f.runs {
		out = append(out, "run/"+id)
	}
	for k := range f.steps {
		out = append(out, "step/"+k)
	}
	sort.Strings(out)
	return out
}

// Started returns a copy of every step spec started so far, in order.
func (f *Fake) Started() []sandbox.StepSpec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sandbox.StepSpec(nil), f.started...)
}

var _ sandbox.Backend = (*Fake)(nil)
