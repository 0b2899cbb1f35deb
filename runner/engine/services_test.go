package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// journal is what the fakes below saw, in order.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

// withServices is the fake backend with services whose readiness is
// readyErr.
type withServices struct {
	*sandboxtest.Fake
	j        *journal
	readyErr error
}

func (b *withServices) StartService(_ context.Context, _ *sandbox.RunSpec, svc *sandbox.ServiceSpec, out io.Writer) error {
	b.j.add("start service %s env=%v", svc.Name, svc.Env)
	io.WriteString(out, "service says hi\n")
	return nil
}

func (b *withServices) WaitServiceReady(_ context.Context, _ *sandbox.RunSpec, svc *sandbox.ServiceSpec, ready []string, timeout time.Duration) error {
	b.j.add("ready %s %v %s", svc.Name, ready, timeout)
	return b.readyErr
}

func (b *withServices) DestroyService(_ context.Context, _ *sandbox.RunSpec, svc *sandbox.ServiceSpec) error {
	b.j.add("destroy service %s", svc.Name)
	return nil
}

// keeper records the calls of the engine.
type keeper struct{ j *journal }

func (k keeper) RestoreCaches(_ context.Context, _ *sandbox.RunSpec, wf *plan.Workflow) ([]sandbox.CacheMount, error) {
	k.j.add("restore %d caches", len(wf.Caches))
	return []sandbox.CacheMount{{Index: 0, Path: wf.Caches[0].Path}}, nil
}

func (k keeper) EndCaches(_ context.Context, _ *sandbox.RunSpec, _ *plan.Workflow, success bool) error {
	k.j.add("end caches success=%v", success)
	return nil
}

func (k keeper) KeepArtifacts(_ context.Context, _ *sandbox.RunSpec, st *plan.Step) error {
	k.j.add("artifacts of %s", st.Name)
	if st.Name == "big" {
		return errors.New("over the limit")
	}
	return nil
}

// serviceSink is sink plus ServiceSink.
type serviceSink struct {
	*sink
	j *journal
}

func (s serviceSink) ServiceStarted(_ *plan.Workflow, svc *plan.Service, _ time.Time) io.Writer {
	s.j.add("sink service %s started", svc.Name)
	return io.Discard
}

func (s serviceSink) ServiceEnded(_ *plan.Workflow, svc *plan.Service, err error) {
	s.j.add("sink service %s ended err=%v", svc.Name, err != nil)
}

// TestServicesCachesArtifacts: services start and are ready before the
// first step, with only the secrets they list; steps mount the restored
// caches; artifacts are kept as each step's ArtifactsWhen says, and a
// failure to keep them fails the step; the caches end unsaved after a
// failed step; services go when the steps ended.
func TestServicesCachesArtifacts(t *testing.T) {
	j := &journal{}
	fake := sandboxtest.New(func(_ context.Context, st *sandbox.StepSpec, _ io.Writer) int {
		j.add("step %s caches=%v", st.Name, st.Caches)
		if st.Name == "test" {
			return 1
		}
		return 0
	})
	be := &withServices{Fake: fake, j: j}
	build := step("build")
	build.Artifacts = []string{"dist/"}
	test := step("test", "build")
	test.Artifacts, test.ArtifactsWhen = []string{"report.xml"}, "failure"
	test.ContinueOnError = true
	pkg := step("pkg", "test")
	pkg.Artifacts, pkg.ArtifactsWhen = []string{"x"}, "success"
	build2 := step("build2", "pkg")
	build2.Artifacts, build2.ArtifactsWhen = []string{"x"}, "failure" // succeeds: nothing kept
	big := step("big", "build2")
	big.Artifacts = []string{"big.bin"}
	wf := instance("ci", "ci.toml", build, test, pkg, build2, big)
	wf.Services = []plan.Service{{Name: "db", Image: "db", Ready: "check", Secrets: []string{"DB_PW"}}}
	wf.Caches = []plan.Cache{{Path: "/cache", Key: "k"}}
	p := newPlan("r1", wf)
	s := serviceSink{sink: newSink(), j: j}
	ctx, cancel := context.WithTimeout(t.Context(), 2*hang)
	defer cancel()
	out := engine.Execute(ctx, p, be, s, engine.Options{StopGrace: time.Second, Keep: keeper{j}, Secrets: []string{"DB_PW=pw", "OTHER=x"}})
	if out.Success {
		t.Error("the run succeeded with a failed step")
	}
	got := j.all()
	want := []string{
		"sink service db started",
		"start service db env=[DB_PW=pw]",
		"ready db [/bin/sh -c check] 1m0s",
		"restore 1 caches",
		"step build caches=[{0 /cache}]",
		"artifacts of build",
		"step test caches=[{0 /cache}]",
		"artifacts of test",
		"step pkg caches=[{0 /cache}]",
		"artifacts of pkg",
		"step build2 caches=[{0 /cache}]",
		"step big caches=[{0 /cache}]",
		"artifacts of big",
		"destroy service db",
		"sink service db ended err=false",
		"end caches success=false",
	}
	if !slices.Equal(got, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	s.want(t, "ci.big", engine.StepFailed, "artifacts: over the limit")
	s.want(t, "ci.pkg", engine.StepCompleted, "")
}

// TestServiceNotReady: a service that does not become ready fails the
// workflow before any step, every step ending with its error.
func TestServiceNotReady(t *testing.T) {
	j := &journal{}
	fake := sandboxtest.New(func(_ context.Context, st *sandbox.StepSpec, _ io.Writer) int {
		j.add("step %s", st.Name)
		return 0
	})
	be := &withServices{Fake: fake, j: j, readyErr: &sandbox.ServiceError{Service: "db", Msg: "exited with code 1 before it was ready", Log: "FATAL"}}
	wf := instance("ci", "ci.toml", step("a"), step("b", "a"))
	wf.Services = []plan.Service{{Name: "db", Image: "db"}}
	wf.Caches = []plan.Cache{{Path: "/cache", Key: "k"}}
	p := newPlan("r2", wf)
	s := newSink()
	out := engine.Execute(t.Context(), p, be, s, engine.Options{StopGrace: time.Second, Keep: keeper{j}})
	if out.Success {
		t.Error("succeeded")
	}
	msg := "service db exited with code 1 before it was ready; its last output:\nFATAL"
	s.want(t, "ci.a", engine.StepCancelled, msg)
	s.want(t, "ci.b", engine.StepCancelled, msg)
	for _, l := range j.all() {
		if strings.HasPrefix(l, "step") || strings.HasPrefix(l, "restore") {
			t.Errorf("after a service failed: %s", l)
		}
	}
	if !slices.Contains(j.all(), "destroy service db") {
		t.Errorf("the service was not removed: %v", j.all())
	}
	// A backend without services says so.
	s = newSink()
	engine.Execute(t.Context(), newPlan("r3", wf), fake, s, engine.Options{StopGrace: time.Second})
	if e := s.end(t, "ci.a"); !strings.Contains(e.Error, "not supported by this sandbox backend") {
		t.Errorf("services on a backend without them: %+v", e)
	}
}

// TestReuse: the workflows Reuse names end at once as reused, without any
// container; the others run.
func TestReuse(t *testing.T) {
	fake := sandboxtest.New(nil)
	p := newPlan("r4", instance("a", "a.toml", step("x")), instance("b", "b.toml", step("y")))
	s := newSink()
	out := engine.Execute(t.Context(), p, fake, s, engine.Options{StopGrace: time.Second, Reuse: func(wf *plan.Workflow) bool { return wf.Key == "a" }})
	if !out.Success {
		t.Errorf("outcome %+v", out)
	}
	if e := s.end(t, "a.x"); !e.Reused || e.Status != engine.StepCompleted {
		t.Errorf("reused step: %+v", e)
	}
	if e := s.end(t, "b.y"); e.Reused || e.Started.IsZero() {
		t.Errorf("step that runs: %+v", e)
	}
	if len(events(fake, "start", "x")) != 0 {
		t.Error("a reused step ran")
	}
}
