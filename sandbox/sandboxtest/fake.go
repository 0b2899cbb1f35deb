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
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kod-forge/kod/sandbox"
)

// StepFunc plays a step: it writes output to out and returns the exit code.
// ctx ends when the step is stopped or destroyed; RunOf(ctx) is the run the
// step belongs to.
type StepFunc func(ctx context.Context, step *sandbox.StepSpec, out io.Writer) int

// Fake is an in-memory sandbox.Backend. The zero value is not usable; call
// New.
type Fake struct {
	run StepFunc

	mu      sync.Mutex
	runs    map[string]sandbox.RunSpec // set-up workspaces not yet destroyed, by runKey
	steps   map[string]*fakeStep
	started []sandbox.StepSpec
	events  []Event
	files   map[string]map[string]string // workspace contents, by runKey
	running int                          // steps playing now
	maxRun  int                          // most steps playing at once so far
	// FailSetup, when set, makes SetupRun fail with it.
	FailSetup error
	// StartDelay makes StartStep take that long (an image pull, a slow
	// engine); it returns ctx's error if ctx ends first.
	StartDelay time.Duration
	// FailStart, when set, is StartStep's error for the steps it returns
	// non-nil for (an image that cannot be pulled...).
	FailStart func(step *sandbox.StepSpec) error
	// FailWait, when set, is WaitStep's error for the steps it returns
	// non-nil for (an engine that lost track of a running step).
	FailWait func(step *sandbox.StepSpec) error
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
	return &Fake{run: run, runs: map[string]sandbox.RunSpec{}, steps: map[string]*fakeStep{}, files: map[string]map[string]string{}}
}

// runKey names one workspace of a run: "<id>" or "<id>/<workspace>".
func runKey(run *sandbox.RunSpec) string {
	if run.Workspace == "" {
		return run.ID
	}
	return run.ID + "/" + run.Workspace
}

func key(run *sandbox.RunSpec, step *sandbox.StepSpec) string {
	return fmt.Sprintf("%s/%d", runKey(run), step.Index)
}

// Event is one call the Fake received or one step ending, in the order they
// happened.
type Event struct {
	Kind      string // "setup", "start", "exit", "stop", "destroy-step", "destroy-run"
	Run       string // run id
	Workspace string // RunSpec.Workspace
	Index     int    // step index; -1 for run events
	Name      string // step name
	Code      int    // exit code ("exit")
	Grace     time.Duration
	At        time.Time
}

// event records e; f.mu is held.
func (f *Fake) event(e Event) {
	e.At = time.Now()
	f.events = append(f.events, e)
}

func stepEvent(kind string, run *sandbox.RunSpec, step *sandbox.StepSpec) Event {
	return Event{Kind: kind, Run: run.ID, Workspace: run.Workspace, Index: step.Index, Name: step.Name}
}

// Events returns a copy of every event so far, in order.
func (f *Fake) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.events...)
}

// Running is the number of steps playing now.
func (f *Fake) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// MaxRunning is the most steps that played at once so far.
func (f *Fake) MaxRunning() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxRun
}

type runCtxKey struct{}

// RunOf returns the run of the step whose StepFunc got ctx.
func RunOf(ctx context.Context) *sandbox.RunSpec {
	r, _ := ctx.Value(runCtxKey{}).(*sandbox.RunSpec)
	return r
}

// WriteFile puts a file into run's workspace (see RunOf); a StepFunc uses
// it to play a step writing into the shared workspace.
func (f *Fake) WriteFile(run *sandbox.RunSpec, name, data string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ws := f.files[runKey(run)]
	if ws == nil {
		ws = map[string]string{}
		f.files[runKey(run)] = ws
	}
	ws[name] = data
}

// ReadFile returns a file of run's workspace and whether it exists.
func (f *Fake) ReadFile(run *sandbox.RunSpec, name string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, ok := f.files[runKey(run)][name]
	return data, ok
}

// SetupRun implements sandbox.Backend: each workspace of a run (RunSpec.Workspace)
// is its own, with its own files.
func (f *Fake) SetupRun(ctx context.Context, run *sandbox.RunSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs[runKey(run)] = *run
	f.event(Event{Kind: "setup", Run: run.ID, Workspace: run.Workspace, Index: -1})
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
	runCopy := *run
	stepCtx, cancel := context.WithCancel(context.WithValue(context.Background(), runCtxKey{}, &runCopy))
	st := &fakeStep{cancel: cancel, done: make(chan struct{})}
	f.mu.Lock()
	if _, ok := f.steps[key(run, step)]; ok {
		f.mu.Unlock()
		cancel()
		return fmt.Errorf("fake: step %d of %s already started", step.Index, runKey(run))
	}
	f.steps[key(run, step)] = st
	f.started = append(f.started, *step)
	f.running++
	f.maxRun = max(f.maxRun, f.running)
	f.event(stepEvent("start", run, step))
	f.mu.Unlock()
	go func() {
		defer close(st.done)
		st.code = f.run(stepCtx, step, out)
		if stepCtx.Err() != nil && st.code == 0 {
			st.code = 143 // stopped by SIGTERM
		}
		f.mu.Lock()
		f.running--
		e := stepEvent("exit", run, step)
		e.Code = st.code
		f.event(e)
		f.mu.Unlock()
	}()
	return nil
}

// WaitStep implements sandbox.Backend.
func (f *Fake) WaitStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec) (sandbox.ExitState, error) {
	if f.FailWait != nil {
		if err := f.FailWait(step); err != nil {
			return sandbox.ExitState{}, err
		}
	}
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
	e := stepEvent("stop", run, step)
	e.Grace = grace
	f.event(e)
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
	f.event(stepEvent("destroy-step", run, step))
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
	delete(f.runs, runKey(run))
	delete(f.files, runKey(run))
	f.event(Event{Kind: "destroy-run", Run: run.ID, Workspace: run.Workspace, Index: -1})
	return nil
}

// Sweep implements sandbox.Backend over the runs not yet destroyed.
func (f *Fake) Sweep(ctx context.Context, instance string, keep func(string) bool) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var removed []string
	for k, run := range f.runs {
		if !keep(run.ID) {
			delete(f.runs, k)
			delete(f.files, k)
			if !slices.Contains(removed, run.ID) {
				removed = append(removed, run.ID)
			}
		}
	}
	sort.Strings(removed)
	return removed, nil
}

// Leftovers returns the workspaces ("run/<id>[/<workspace>]") and steps
// ("step/<id>[/<workspace>]/<index>") not destroyed yet.
func (f *Fake) Leftovers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.runs {
		out = append(out, "run/"+k)
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
