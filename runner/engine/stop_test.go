package engine_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// blockUntilStopped plays a step that runs until it is stopped; started
// gets its name once it runs.
func blockUntilStopped(started chan<- string) sandboxtest.StepFunc {
	return func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		io.WriteString(out, st.Name+" running\n")
		started <- st.Name
		<-ctx.Done()
		return 143
	}
}

func waitStarted(t *testing.T, started <-chan string, n int) {
	t.Helper()
	for range n {
		select {
		case <-started:
		case <-time.After(hang):
			t.Fatalf("steps did not start")
		}
	}
}

// Cancelling a run stops every running step (each with the grace), cancels
// every pending one, ends every step once and removes every workspace.
func TestCancelStopsEveryRunningStep(t *testing.T) {
	started := make(chan string, 8)
	fake := sandboxtest.New(blockUntilStopped(started))
	p := newPlan("r1",
		instance("a", "a.toml", step("a1"), step("a2"), step("a3", "a1", "a2"), step("a4", "a3")),
		instance("b", "b.toml", step("b1"), step("b2", "b1")))
	s := newSink()
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("cancelled by alice")
	go func() {
		waitStarted(t, started, 3) // a1, a2, b1
		cancel(cause)
	}()
	out := execute(t, ctx, p, fake, s, engine.Options{StopGrace: 7 * time.Second})
	if out.Success || !errors.Is(out.Err, cause) {
		t.Fatalf("outcome %+v, want the cancellation cause", out)
	}
	for _, id := range []string{"a.a1", "a.a2", "b.b1"} {
		end := s.want(t, id, engine.StepCancelled, "cancelled by alice")
		if end.ExitCode == nil || *end.ExitCode != 143 || end.Started.IsZero() || end.Ended.IsZero() {
			t.Errorf("%s: %+v", id, end)
		}
	}
	for _, id := range []string{"a.a3", "a.a4", "b.b2"} {
		end := s.want(t, id, engine.StepCancelled, "cancelled by alice")
		if !end.Started.IsZero() || end.ExitCode != nil {
			t.Errorf("%s never started but got %+v", id, end)
		}
	}
	for _, name := range []string{"a1", "a2", "b1"} {
		stops := events(fake, "stop", name)
		if len(stops) != 1 || stops[0].Grace != 7*time.Second {
			t.Errorf("%s: stop events %+v, want one with a 7 s grace", name, stops)
		}
	}
	if n := len(fake.Started()); n != 3 {
		t.Errorf("%d steps started, want 3", n)
	}
	var removed int
	for _, e := range fake.Events() {
		if e.Kind == "destroy-run" {
			removed++
		}
	}
	if removed != 2 {
		t.Errorf("%d workspaces removed, want 2", removed)
	}
}

// A failed step of a fail_fast instance cancels the other instances of the
// same file (running steps stopped, pending ones cancelled); another file
// goes on, and so do the failed instance's independent steps.
func TestFailFast(t *testing.T) {
	started := make(chan string, 8)
	failNow := make(chan struct{})
	fake := sandboxtest.New(func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		switch st.Name {
		case "test-1":
			<-failNow
			return 1
		case "test-2":
			started <- st.Name
			<-ctx.Done()
			return 143
		}
		return 0
	})
	wf1 := instance("ci-1", "ci.toml", step("test-1"), step("after-1", "test-1"), step("other-1"))
	wf2 := instance("ci-2", "ci.toml", step("test-2"), step("after-2", "test-2"))
	wf1.FailFast, wf2.FailFast = true, true
	wf1.Label, wf2.Label = "ci.toml (N=1)", "ci.toml (N=2)"
	lint := instance("lint", "lint.toml", step("lint"))
	p := newPlan("r1", wf1, wf2, lint)
	s := newSink()
	go func() {
		waitStarted(t, started, 1)
		close(failNow)
	}()
	out := execute(t, context.Background(), p, fake, s, engine.Options{})
	if out.Success || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "ci-1.test-1", engine.StepFailed, "step failed with exit code 1")
	s.want(t, "ci-1.after-1", engine.StepSkipped, "needs 'test-1', which failed")
	s.want(t, "ci-1.other-1", engine.StepCompleted, "")
	const why = "cancelled: ci.toml (N=1) failed and its workflow has fail_fast"
	s.want(t, "ci-2.test-2", engine.StepCancelled, why)
	s.want(t, "ci-2.after-2", engine.StepCancelled, why)
	s.want(t, "lint.lint", engine.StepCompleted, "")
	if len(events(fake, "stop", "test-2")) != 1 {
		t.Error("test-2 was not stopped")
	}
}

// Without fail_fast, a failure in one instance leaves the others alone.
func TestNoFailFast(t *testing.T) {
	fake := sandboxtest.New(sandboxtest.Steps(map[string]sandboxtest.Play{"test-1": {Exit: 1}, "test-2": {Sleep: 50 * time.Millisecond}}))
	p := newPlan("r1", instance("ci-1", "ci.toml", step("test-1")), instance("ci-2", "ci.toml", step("test-2")))
	s := newSink()
	if out := execute(t, context.Background(), p, fake, s, engine.Options{}); out.Success {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "ci-2.test-2", engine.StepCompleted, "")
}

// A step over its timeout is stopped and fails with Kod's text; its
// dependents are skipped. A workflow over its timeout fails its running
// step and cancels the pending ones.
func TestTimeouts(t *testing.T) {
	started := make(chan string, 8)
	fake := sandboxtest.New(blockUntilStopped(started))
	slow := step("slow")
	slow.Timeout = time.Second
	p := newPlan("r1", instance("ci", "ci.toml", slow, step("next", "slow")))
	s := newSink()
	if out := execute(t, context.Background(), p, fake, s, engine.Options{}); out.Success || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	end := s.want(t, "ci.slow", engine.StepFailed, "step timed out after 1 s")
	if end.ExitCode == nil || *end.ExitCode != 143 {
		t.Errorf("exit code %v, want 143", end.ExitCode)
	}
	s.want(t, "ci.next", engine.StepSkipped, "needs 'slow', which failed")

	s = newSink()
	wf := instance("ci", "ci.toml", step("first"), step("second", "first"))
	wf.Timeout = time.Second
	p = newPlan("r2", wf)
	if out := execute(t, context.Background(), p, fake, s, engine.Options{}); out.Success || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "ci.first", engine.StepFailed, "workflow timed out after 1 s")
	s.want(t, "ci.second", engine.StepSkipped, "needs 'first', which failed")
}

// A continue_on_error step that times out lets its dependents run into
// the workflow's end: pending steps after a workflow timeout are
// cancelled.
func TestWorkflowTimeoutCancelsPending(t *testing.T) {
	started := make(chan string, 8)
	fake := sandboxtest.New(blockUntilStopped(started))
	first := step("first")
	first.ContinueOnError = true
	wf := instance("ci", "ci.toml", first, step("second", "first"))
	wf.Timeout = time.Second
	p := newPlan("r1", wf)
	s := newSink()
	if out := execute(t, context.Background(), p, fake, s, engine.Options{}); out.Success || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "ci.first", engine.StepFailed, "workflow timed out after 1 s")
	s.want(t, "ci.second", engine.StepCancelled, "workflow timed out after 1 s")
}

// A step whose wait fails is removed before its end is reported, so none
// of its output can follow StepEnded.
func TestWaitFailureRemovesTheStepFirst(t *testing.T) {
	started := make(chan string, 1)
	fake := sandboxtest.New(blockUntilStopped(started))
	fake.FailWait = func(st *sandbox.StepSpec) error {
		<-started
		return errors.New("engine lost the step")
	}
	var destroyedFirst bool
	s := &endHook{sink: newSink(), ended: func() {
		destroyedFirst = len(events(fake, "destroy-step", "lost")) > 0
	}}
	p := newPlan("r1", instance("ci", "ci.toml", step("lost")))
	out := engine.Execute(context.Background(), p, fake, s, engine.Options{StopGrace: time.Second})
	if out.Success {
		t.Fatalf("outcome %+v", out)
	}
	s.sink.want(t, "ci.lost", engine.StepFailed, "waiting for the step: engine lost the step")
	if !destroyedFirst {
		t.Error("the step was reported ended before it was removed")
	}
	if left := fake.Leftovers(); len(left) != 0 {
		t.Errorf("left: %v", left)
	}
}

// endHook calls ended before passing StepEnded on.
type endHook struct {
	*sink
	ended func()
}

func (h *endHook) StepEnded(st *plan.Step, end engine.StepEnd) {
	h.ended()
	h.sink.StepEnded(st, end)
}
