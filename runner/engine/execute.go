package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox"
)

// execution is the state of one Execute.
type execution struct {
	p    *plan.Plan
	be   sandbox.Backend
	sink Sink
	opts Options

	instances []*instance
	// admitted bounds the instances set up at once (Options.MaxWorkspaces);
	// waiting counts those not admitted yet.
	admitted chan struct{}
	waiting  atomic.Int32
}

// DefaultMaxWorkspaces is Options.MaxWorkspaces when it is 0: workflow
// instances of one run holding a workspace and network at once.
const DefaultMaxWorkspaces = 8

func (x *execution) log() *slog.Logger {
	if x.opts.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return x.opts.Log
}

// FailFastError is the cause of the cancellation of a workflow instance by
// a failed sibling instance of a file with fail_fast = true.
type FailFastError struct {
	Label string // the instance that failed, e.g. "ci.toml (GO=1.26, DB=pg)"
}

func (e *FailFastError) Error() string {
	return fmt.Sprintf("cancelled: %s failed and its workflow has fail_fast", e.Label)
}

// Execute runs plan p over be and reports every step to sink: all workflow
// instances at once, each with its own sandbox.RunSpec (ID =
// p.Trigger.RunID, Workspace = Workflow.Key) set up and loaded with
// opts.Prepare, its steps as a graph of needs. It returns once every
// planned step got its StepEnded and every object it created is removed,
// also when ctx is cancelled: then every running step is stopped (each with
// opts.StopGrace), every pending one ends StepCancelled, and Outcome.Err is
// context.Cause(ctx).
//
// Rules: a step starts once every step it needs has ended. A step that
// failed (without continue_on_error) skips, transitively, every step that
// needs it ("needs 'build', which failed") and fails its workflow; steps
// that do not depend on it go on. A step whose `if` is false is skipped
// and counts as done, as does a failure with continue_on_error. A failed
// step of an instance with FailFast cancels the other instances of the same
// file. Legacy steps' exports flow into the environment and {env.X} of the
// steps that run after them.
func Execute(ctx context.Context, p *plan.Plan, be sandbox.Backend, sink Sink, opts Options) Outcome {
	x := &execution{p: p, be: be, sink: sink, opts: opts}
	limit := opts.MaxWorkspaces
	if limit <= 0 {
		limit = DefaultMaxWorkspaces
	}
	x.admitted = make(chan struct{}, limit)
	for _, wf := range p.Workflows {
		x.instances = append(x.instances, &instance{x: x, wf: wf})
	}
	x.waiting.Store(int32(len(x.instances)))
	for _, in := range x.instances {
		in.ctx, in.cancel = context.WithCancelCause(ctx)
	}
	var wg sync.WaitGroup
	for _, in := range x.instances {
		// In plan order, as slots for workspaces free up.
		select {
		case x.admitted <- struct{}{}:
			x.waiting.Add(-1)
			if in.ctx.Err() != nil { // cancelled as its turn came
				<-x.admitted
				in.endAll(context.Cause(in.ctx))
				continue
			}
			wg.Go(in.run)
		case <-in.ctx.Done():
			x.waiting.Add(-1)
			in.endAll(context.Cause(in.ctx))
		}
	}
	wg.Wait()
	out := x.outcome(ctx)
	if opts.Finished != nil {
		opts.Finished(out)
	}
	for _, in := range x.instances {
		wg.Go(func() { in.destroy(ctx) })
	}
	wg.Wait()
	for _, in := range x.instances {
		in.cancel(nil)
	}
	return out
}

// outcome is how the plan ended, once every instance did.
func (x *execution) outcome(ctx context.Context) Outcome {
	if cause := context.Cause(ctx); cause != nil {
		return Outcome{Err: cause}
	}
	var errs []error
	ok := true
	for _, in := range x.instances {
		if in.setupErr != nil {
			errs = append(errs, in.setupErr)
		}
		ok = ok && !in.failed
	}
	if len(errs) > 0 {
		return Outcome{Err: errs[0]}
	}
	return Outcome{Success: ok}
}

// failFast cancels every other instance of failed's file.
func (x *execution) failFast(failed *instance) {
	for _, in := range x.instances {
		if in != failed && in.wf.File == failed.wf.File {
			in.cancel(&FailFastError{Label: failed.wf.Label})
		}
	}
}

// instance is one executing workflow instance.
type instance struct {
	x      *execution
	wf     *plan.Workflow
	ctx    context.Context // the run's, ended by fail_fast of a sibling
	cancel context.CancelCauseFunc

	spec     *sandbox.RunSpec // set once SetupRun was called
	setupErr error            // the workspace could not be prepared
	failed   bool             // a step failed without continue_on_error
	// removals are the step containers being removed in the background;
	// awaited before the workspace goes.
	removals  sync.WaitGroup
	destroyed bool // destroy has run

	services       []*startedService    // services asked for (services.go)
	caches         []sandbox.CacheMount // how steps mount the restored caches
	cachesRestored bool                 // RestoreCaches was called: EndCaches is due
}

// run sets up the instance's workspace and runs its steps, holding one of
// the Options.MaxWorkspaces turns Execute gave it. Its objects are removed
// at once when other instances wait for a turn that only this one's end
// can give (every turn is taken), else after every instance ended.
func (in *instance) run() {
	ctx := in.ctx
	x := in.x
	defer func() {
		// An instance not yet admitted while turns are free will get
		// one without this instance's: no reason to remove early.
		if x.waiting.Load() > 0 && len(x.admitted) == cap(x.admitted) {
			in.destroy(ctx)
		}
		<-x.admitted
	}()
	if in.reuse() {
		return
	}
	spec := &sandbox.RunSpec{ID: x.p.Trigger.RunID, Workspace: in.wf.Key, Instance: x.opts.Instance, Network: in.wf.Network,
		Steps: len(in.wf.Steps)}
	in.spec = spec
	err := x.be.SetupRun(ctx, spec)
	if err != nil {
		err = fmt.Errorf("preparing the workspace: %w", err)
	} else if x.opts.Prepare != nil {
		err = x.opts.Prepare(ctx, spec, in.wf)
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause // a consequence of the cancellation
		} else {
			in.setupErr = err
			in.failed = true
		}
		in.endAll(err)
		return
	}
	if in.wf.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, in.wf.Timeout, &TimeoutError{"workflow", int(in.wf.Timeout / time.Second)})
		defer cancel()
	}
	// Services and caches fail the workflow before any step runs; the
	// error (a service's last lines) is every step's reason. Services go
	// as soon as the steps ended, before the run's final state is told.
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		in.destroyServices(cctx)
	}()
	if err := in.startServices(ctx); err != nil {
		in.endAll(err)
		in.failed = true
		return
	}
	if err := in.restoreCaches(ctx); err != nil {
		in.endAll(err)
		in.failed = true
		return
	}
	newGraph(in).run(ctx)
}

// endAll ends every step of an instance that could not start (the run
// was cancelled, or its workspace, services or caches failed): cancelled,
// with the reason. Not skipped: a skipped step counts as a success.
func (in *instance) endAll(err error) {
	for _, st := range in.wf.Steps {
		in.x.sink.StepEnded(st, StepEnd{Status: StepCancelled, Error: err.Error()})
	}
}

// destroy removes the instance's workspace and network, trying again while
// the engine refuses (it may be back a moment later; the periodic sweep is
// the last line of defence, not the plan).
func (in *instance) destroy(ctx context.Context) {
	if in.spec == nil || in.destroyed {
		return
	}
	in.destroyed = true
	in.removals.Wait()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	in.endCaches(ctx)
	in.destroyServices(ctx)
	wait := time.Second
	for attempt := 1; ; attempt++ {
		err := in.x.be.DestroyRun(ctx, in.spec)
		if err == nil {
			return
		}
		in.x.log().Error("removing workspace objects", "run", in.spec.ID, "workspace", in.spec.Workspace, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 15*time.Second)
	}
}
