package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// shStep is a step running script in the test image.
func shStep(name, script string, needs ...string) *plan.Step {
	st := step(name, needs...)
	st.Image, st.Pull, st.Script = dockertest.Image, sandbox.PullNever, script
	return st
}

// engineBackend is the Docker backend as the server configures it (with
// the network holder), on the engine dockertest finds.
func engineBackend(t testing.TB) *docker.Docker {
	t.Helper()
	return dockertest.RequireServer(t, "")
}

// dockerRun executes p on the real engine under a fresh instance id and
// checks that nothing of the run is left.
func dockerRun(t *testing.T, ctx context.Context, d *docker.Docker, p *plan.Plan, s *sink) engine.Outcome {
	t.Helper()
	instance := dockertest.NewID(t)
	t.Cleanup(func() { dockertest.Clean(t, d, instance) })
	ctx, cancel := context.WithTimeout(ctx, 4*hang)
	defer cancel()
	out := engine.Execute(ctx, p, d, s, engine.Options{Instance: instance, StopGrace: 2 * time.Second})
	if left := dockertest.Leftovers(t, instance); len(left) != 0 {
		t.Errorf("left after Execute: %v", left)
	}
	s.checkAllEnded(t, p)
	return out
}

// waitOther is a script that marks its start in the workspace and waits
// (at most a minute, to catch hangs) until other marked its own.
func waitOther(name, other string) string {
	return "test -f bin/app\ntouch started-" + name + "\n" +
		"i=0; while ! test -f started-" + other + "; do i=$((i+1)); test $i -lt 600; sleep 0.1; done\necho " + name + " saw " + other
}

// A diamond on the real engine: unit and lint both see build's files and
// run at the same time (each waits until the other started), package runs
// after both and sees their files too.
func TestDockerDiamond(t *testing.T) {
	d := engineBackend(t)
	p := newPlan(dockertest.NewID(t), instance("ci", "ci.toml",
		shStep("build", "mkdir -p bin && echo app > bin/app"),
		shStep("unit", waitOther("unit", "lint"), "build"),
		shStep("lint", waitOther("lint", "unit"), "build"),
		shStep("package", "test -f started-unit && test -f started-lint && cat bin/app", "unit", "lint")))
	s := newSink()
	out := dockerRun(t, context.Background(), d, p, s)
	for _, id := range []string{"ci.build", "ci.unit", "ci.lint", "ci.package"} {
		s.want(t, id, engine.StepCompleted, "")
	}
	if !out.Success {
		t.Fatalf("outcome %+v; outputs: unit %q lint %q package %q", out, s.output("ci.unit"), s.output("ci.lint"), s.output("ci.package"))
	}
	if got := s.output("ci.package"); got != "app\n" {
		t.Errorf("package output %q", got)
	}
	unit, lint, build := s.end(t, "ci.unit"), s.end(t, "ci.lint"), s.end(t, "ci.build")
	if !unit.Started.Before(lint.Ended) || !lint.Started.Before(unit.Ended) {
		t.Errorf("unit %v-%v and lint %v-%v did not overlap", unit.Started, unit.Ended, lint.Started, lint.Ended)
	}
	if unit.Started.Before(build.Ended) || lint.Started.Before(build.Ended) {
		t.Error("unit or lint started before build ended")
	}
}

// Two workflow instances of one run have their own workspaces: a file one
// writes is absent in the other.
func TestDockerWorkspacesIsolated(t *testing.T) {
	d := engineBackend(t)
	p := newPlan(dockertest.NewID(t),
		instance("a", "a.toml", shStep("write", "touch mine-a"), shStep("check", "test -f mine-a && ! test -f mine-b", "write")),
		instance("b", "b.toml", shStep("write", "touch mine-b"), shStep("check", "test -f mine-b && ! test -f mine-a", "write")))
	s := newSink()
	if out := dockerRun(t, context.Background(), d, p, s); !out.Success {
		t.Fatalf("outcome %+v; a: %+v, b: %+v", out, s.end(t, "a.check"), s.end(t, "b.check"))
	}
}

// Cancelling during parallel steps stops all of them and leaves no
// container, volume or network.
func TestDockerCancelParallel(t *testing.T) {
	d := engineBackend(t)
	p := newPlan(dockertest.NewID(t), instance("ci", "ci.toml",
		shStep("one", "echo up; sleep 300"), shStep("two", "echo up; sleep 300"), shStep("three", "echo up; sleep 300"),
		shStep("after", "true", "one", "two", "three")))
	s := newSink()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	cause := errors.New("cancelled by alice")
	go func() {
		deadline := time.Now().Add(2 * hang)
		for time.Now().Before(deadline) {
			if s.output("ci.one") != "" && s.output("ci.two") != "" && s.output("ci.three") != "" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		cancel(cause)
	}()
	out := dockerRun(t, ctx, d, p, s)
	if !errors.Is(out.Err, cause) {
		t.Fatalf("outcome %+v", out)
	}
	for _, id := range []string{"ci.one", "ci.two", "ci.three"} {
		end := s.want(t, id, engine.StepCancelled, "cancelled by alice")
		if end.ExitCode == nil || s.output(id) != "up\n" {
			t.Errorf("%s: exit %v, output %q", id, end.ExitCode, s.output(id))
		}
	}
	s.want(t, "ci.after", engine.StepCancelled, "cancelled by alice")
}
