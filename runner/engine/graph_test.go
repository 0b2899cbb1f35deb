package engine_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// A diamond: unit and lint start only after build, run at the same time
// (each waits until the other started), and package waits for both.
func TestDiamondOrderAndOverlap(t *testing.T) {
	both := newBarrier(2)
	var fake *sandboxtest.Fake
	fake = sandboxtest.New(func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		switch st.Name {
		case "build":
			fake.WriteFile(sandboxtest.RunOf(ctx), "bin/app", "built")
		case "unit", "lint":
			if _, ok := fake.ReadFile(sandboxtest.RunOf(ctx), "bin/app"); !ok {
				io.WriteString(out, "no bin/app\n")
				return 2
			}
			if !both.wait(ctx) {
				return 1
			}
		}
		return 0
	})
	p := newPlan("r1", instance("ci", "ci.toml",
		step("build"), step("unit", "build"), step("lint", "build"), step("package", "unit", "lint")))
	s := newSink()
	out := execute(t, context.Background(), p, fake, s, engine.Options{})
	if !out.Success || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	for _, id := range []string{"ci.build", "ci.unit", "ci.lint", "ci.package"} {
		s.want(t, id, engine.StepCompleted, "")
	}
	build := seq(fake, "exit", "build")
	for _, name := range []string{"unit", "lint"} {
		if start := seq(fake, "start", name); start < build {
			t.Errorf("%s started (event %d) before build exited (event %d)", name, start, build)
		}
		if seq(fake, "exit", name) > seq(fake, "start", "package") {
			t.Errorf("package started before %s exited", name)
		}
	}
	// Each of unit and lint waited for the other to start: they overlapped.
	if fake.MaxRunning() != 2 {
		t.Errorf("at most %d steps ran at once, want 2", fake.MaxRunning())
	}
}

// A failed step skips everything that needs it, transitively, with the
// reason; steps that do not depend on it go on and the run fails.
func TestFailureSkipsDependentsTransitively(t *testing.T) {
	fake := sandboxtest.New(sandboxtest.Steps(map[string]sandboxtest.Play{"lint": {Output: "bad\n", Exit: 3}}))
	p := newPlan("r1", instance("ci", "ci.toml",
		step("build"), step("unit", "build"), step("lint", "build"), step("package", "unit", "lint"), step("deploy", "package"),
		step("docs")))
	s := newSink()
	out := execute(t, context.Background(), p, fake, s, engine.Options{})
	if out.Success || out.Err != nil {
		t.Fatalf("outcome %+v, want a failure without a run error", out)
	}
	s.want(t, "ci.build", engine.StepCompleted, "")
	s.want(t, "ci.unit", engine.StepCompleted, "")
	end := s.want(t, "ci.lint", engine.StepFailed, "step failed with exit code 3")
	if end.ExitCode == nil || *end.ExitCode != 3 || s.output("ci.lint") != "bad\n" {
		t.Errorf("lint: exit code %v, output %q", end.ExitCode, s.output("ci.lint"))
	}
	s.want(t, "ci.package", engine.StepSkipped, "needs 'lint', which failed")
	s.want(t, "ci.deploy", engine.StepSkipped, "needs 'lint', which failed")
	s.want(t, "ci.docs", engine.StepCompleted, "")
	for _, name := range []string{"package", "deploy"} {
		if e := s.end(t, "ci."+name); e.ExitCode != nil || !e.Started.IsZero() {
			t.Errorf("%s: %+v, want no exit code and no start", name, e)
		}
		if len(events(fake, "start", name)) != 0 {
			t.Errorf("%s started", name)
		}
	}
}

// A step skipped by a false `if` counts as done: its dependents run. A
// failure with continue_on_error counts as done too, and the run succeeds.
func TestIfFalseAndContinueOnErrorCountAsDone(t *testing.T) {
	fake := sandboxtest.New(sandboxtest.Steps(map[string]sandboxtest.Play{"flaky": {Exit: 1}}))
	deploy := step("deploy")
	deploy.If = cond(t, "branch == 'release'")
	flaky := step("flaky", "deploy")
	flaky.ContinueOnError = true
	p := newPlan("r1", instance("ci", "ci.toml", deploy, step("after", "deploy"), flaky, step("last", "flaky")))
	s := newSink()
	out := execute(t, context.Background(), p, fake, s, engine.Options{})
	if !out.Success || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "ci.deploy", engine.StepSkipped, "")
	s.want(t, "ci.after", engine.StepCompleted, "")
	s.want(t, "ci.flaky", engine.StepFailed, "step failed with exit code 1")
	s.want(t, "ci.last", engine.StepCompleted, "")
	if len(events(fake, "start", "deploy")) != 0 {
		t.Error("deploy started although its if is false")
	}
}

// Steps with needs = [] all start at once.
func TestNoNeedsRunInParallel(t *testing.T) {
	all := newBarrier(4)
	fake := sandboxtest.New(func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if !all.wait(ctx) {
			return 1
		}
		return 0
	})
	p := newPlan("r1", instance("ci", "ci.toml", step("a"), step("b"), step("c"), step("d")))
	s := newSink()
	if out := execute(t, context.Background(), p, fake, s, engine.Options{}); !out.Success {
		t.Fatalf("outcome %+v", out)
	}
	if fake.MaxRunning() != 4 {
		t.Errorf("at most %d steps at once, want 4", fake.MaxRunning())
	}
}

// Workflow instances run at once, each in its own workspace: a file one
// writes is absent in the other, and each workspace is removed.
func TestInstancesHaveTheirOwnWorkspaces(t *testing.T) {
	both := newBarrier(2)
	var fake *sandboxtest.Fake
	fake = sandboxtest.New(func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		run := sandboxtest.RunOf(ctx)
		f := fake
		switch st.Name {
		case "write":
			f.WriteFile(run, "mine", run.Workspace)
			if !both.wait(ctx) {
				return 1
			}
		case "read":
			got, _ := f.ReadFile(run, "mine")
			io.WriteString(out, got)
		}
		return 0
	})
	p := newPlan("r1",
		instance("a", "a.toml", step("write"), step("read", "write")),
		instance("b", "b.toml", step("write"), step("read", "write")))
	s := newSink()
	if out := execute(t, context.Background(), p, fake, s, engine.Options{Instance: "i1"}); !out.Success {
		t.Fatalf("outcome %+v", out)
	}
	if s.output("a.read") != "a" || s.output("b.read") != "b" {
		t.Errorf("a read %q, b read %q", s.output("a.read"), s.output("b.read"))
	}
	var setups, destroys []string
	for _, e := range fake.Events() {
		switch e.Kind {
		case "setup":
			setups = append(setups, e.Run+"/"+e.Workspace)
		case "destroy-run":
			destroys = append(destroys, e.Run+"/"+e.Workspace)
		}
	}
	slices.Sort(setups)
	slices.Sort(destroys)
	if want := []string{"r1/a", "r1/b"}; !slices.Equal(setups, want) || !slices.Equal(destroys, want) {
		t.Errorf("set up %v, destroyed %v, want %v", setups, destroys, want)
	}
}

// Legacy steps form a chain; each step's exports reach the later steps'
// environment, their {env.X} placeholders and their `if`.
func TestLegacyExportsFlowForward(t *testing.T) {
	fake := sandboxtest.New(nil)
	first := step("first")
	first.Interpolate = true
	first.Script = "echo {branch}\nX='{branch}-1'; export X"
	first.Exports = []workflow.EnvVar{{Name: "X", Value: "{branch}-1"}}
	second := step("second", "first")
	second.Interpolate = true
	second.Script = "echo {env.X} {repo}"
	third := step("third", "second")
	third.Interpolate = true
	third.If = cond(t, "env.X == 'main-1'")
	p := newPlan("r1", instance("ci", "ci.kod", first, second, third))
	p.Workflows[0].Format = workflow.FormatLegacy
	s := newSink()
	opts := engine.Options{Secrets: []string{"TOKEN=s3cret", "CI=false"}}
	if out := execute(t, context.Background(), p, fake, s, opts); !out.Success {
		t.Fatalf("outcome %+v", out)
	}
	started := fake.Started()
	if len(started) != 3 {
		t.Fatalf("%d steps started, want 3", len(started))
	}
	if got := started[0].Command[len(started[0].Command)-1]; got != "echo main\nX='main-1'; export X" {
		t.Errorf("first script %q", got)
	}
	if got := started[1].Command[len(started[1].Command)-1]; got != "echo main-1 repo" {
		t.Errorf("second script %q", got)
	}
	want := []string{"X=main-1", "TOKEN=s3cret", "CI=false", "CI=true", "KOD_REPO=repo", "KOD_BRANCH=main",
		"KOD_COMMIT=c0ffee", "KOD_RUN_ID=r1", "KOD_WORKFLOW=ci.kod"}
	if !slices.Equal(started[1].Env, want) {
		t.Errorf("second env %q, want %q", started[1].Env, want)
	}
	if !slices.Equal(started[0].Env, want[1:]) {
		t.Errorf("first env %q, want %q", started[0].Env, want[1:])
	}
}

// A step that cannot start fails with the backend's message, which is
// also its output; StepError messages are the user's.
func TestStartFailure(t *testing.T) {
	fake := sandboxtest.New(nil)
	fake.FailStart = func(st *sandbox.StepSpec) error {
		switch st.Name {
		case "pull":
			return &sandbox.StepError{Msg: "pulling image img: not found"}
		case "engine":
			return errors.New("engine down")
		}
		return nil
	}
	p := newPlan("r1", instance("ci", "ci.toml", step("pull"), step("engine"), step("after", "pull")))
	s := newSink()
	if out := execute(t, context.Background(), p, fake, s, engine.Options{}); out.Success || out.Err != nil {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "ci.pull", engine.StepFailed, "pulling image img: not found")
	s.want(t, "ci.engine", engine.StepFailed, "starting the step: engine down")
	s.want(t, "ci.after", engine.StepSkipped, "needs 'pull', which failed")
	if got := s.output("ci.pull"); got != "kod: pulling image img: not found\n" {
		t.Errorf("output %q", got)
	}
	if e := s.end(t, "ci.pull"); e.ExitCode != nil {
		t.Errorf("exit code %d for a step that never ran", *e.ExitCode)
	}
}

// A workspace that cannot be set up skips the instance's steps and is the
// run's error; the other instances run.
func TestSetupFailure(t *testing.T) {
	fake := sandboxtest.New(nil)
	fake.FailSetup = errors.New("no space")
	p := newPlan("r1", instance("ci", "ci.toml", step("a"), step("b", "a")))
	s := newSink()
	out := execute(t, context.Background(), p, fake, s, engine.Options{})
	if out.Success || out.Err == nil || out.Err.Error() != "preparing the workspace: no space" {
		t.Fatalf("outcome %+v", out)
	}
	// Steps that never ran because their workflow failed first are
	// cancelled (a skipped step counts as a success).
	s.want(t, "ci.a", engine.StepCancelled, "preparing the workspace: no space")
	s.want(t, "ci.b", engine.StepCancelled, "preparing the workspace: no space")

	fake = sandboxtest.New(nil)
	s = newSink()
	p = newPlan("r2", instance("a", "a.toml", step("a")), instance("b", "b.toml", step("b")))
	out = execute(t, context.Background(), p, fake, s, engine.Options{Prepare: func(ctx context.Context, run *sandbox.RunSpec, wf *plan.Workflow) error {
		if wf.Key == "b" {
			return errors.New("archiving commit c0ffee: gone")
		}
		return nil
	}})
	if out.Success || out.Err == nil || !strings.Contains(out.Err.Error(), "gone") {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "a.a", engine.StepCompleted, "")
	s.want(t, "b.b", engine.StepCancelled, "archiving commit c0ffee: gone")
}

// Finished sees the outcome once every step ended and before any workspace
// is removed.
func TestFinishedBeforeRemoval(t *testing.T) {
	fake := sandboxtest.New(nil)
	p := newPlan("r1", instance("a", "a.toml", step("a")), instance("b", "b.toml", step("b")))
	s := newSink()
	var removedBefore int
	var got engine.Outcome
	opts := engine.Options{Finished: func(o engine.Outcome) {
		got = o
		for _, e := range fake.Events() {
			if e.Kind == "destroy-run" {
				removedBefore++
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.order) != 2 {
			t.Errorf("Finished after %d StepEnded, want 2", len(s.order))
		}
	}}
	out := execute(t, context.Background(), p, fake, s, opts)
	if got != out || removedBefore != 0 {
		t.Errorf("Finished got %+v (Execute returned %+v), %d workspaces removed before", got, out, removedBefore)
	}
}

// A step's `if` sees the environment the step would get (matrix values
// included), so a step can run in some matrix instances only.
func TestIfSeesTheStepEnvironment(t *testing.T) {
	fake := sandboxtest.New(nil)
	var wfs []*plan.Workflow
	for _, db := range []string{"pg", "sqlite"} {
		st := step("migrate")
		st.Env = []workflow.EnvVar{{Name: "MATRIX_DB", Value: db}}
		st.If = cond(t, "env.MATRIX_DB == 'pg'")
		wfs = append(wfs, instance("ci-"+db, "ci.toml", st))
	}
	s := newSink()
	if out := execute(t, context.Background(), newPlan("r1", wfs...), fake, s, engine.Options{}); !out.Success {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "ci-pg.migrate", engine.StepCompleted, "")
	s.want(t, "ci-sqlite.migrate", engine.StepSkipped, "")
	if started := fake.Started(); len(started) != 1 || !slices.Contains(started[0].Env, "MATRIX_DB=pg") {
		t.Errorf("started %+v", started)
	}
}

// At most MaxWorkspaces instances hold a workspace at once; the others
// start in plan order as earlier ones end and are removed, and a
// cancellation ends the waiting ones without setting them up.
func TestMaxWorkspaces(t *testing.T) {
	fake := sandboxtest.New(sandboxtest.Steps(map[string]sandboxtest.Play{"s": {Sleep: 20 * time.Millisecond}}))
	var wfs []*plan.Workflow
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		wfs = append(wfs, instance(k, k+".toml", step("s"), step("t", "s")))
	}
	s := newSink()
	if out := execute(t, context.Background(), newPlan("r1", wfs...), fake, s, engine.Options{MaxWorkspaces: 2}); !out.Success {
		t.Fatalf("outcome %+v", out)
	}
	held, most := 0, 0
	var order []string
	for _, e := range fake.Events() {
		switch e.Kind {
		case "setup":
			held++
			order = append(order, e.Workspace)
		case "destroy-run":
			held--
		}
		most = max(most, held)
	}
	slices.Sort(order)
	if most != 2 || !slices.Equal(order, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("%d workspaces at once, set up %v", most, order)
	}

	// fail_fast cancels a waiting instance before it is set up.
	fake = sandboxtest.New(sandboxtest.Steps(map[string]sandboxtest.Play{"bad": {Exit: 1}}))
	wfs = nil
	for _, k := range []string{"m1", "m2", "m3"} {
		wf := instance(k, "m.toml", step("bad"))
		wf.FailFast, wf.Label = true, "m.toml ("+k+")"
		wfs = append(wfs, wf)
	}
	s = newSink()
	if out := execute(t, context.Background(), newPlan("r2", wfs...), fake, s, engine.Options{MaxWorkspaces: 1}); out.Success {
		t.Fatalf("outcome %+v", out)
	}
	s.want(t, "m1.bad", engine.StepFailed, "step failed with exit code 1")
	for _, id := range []string{"m2.bad", "m3.bad"} {
		s.want(t, id, engine.StepCancelled, "cancelled: m.toml (m1) failed and its workflow has fail_fast")
	}
	for _, e := range fake.Events() {
		if e.Kind == "setup" && e.Workspace != "m1" {
			t.Errorf("%s was set up after the fail_fast cancellation", e.Workspace)
		}
	}
}
