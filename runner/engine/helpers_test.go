package engine_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/runner/plan"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// hang is the deadline of waits that only catch hangs.
const hang = 30 * time.Second

// step is a TOML-like step named name that needs the named steps of its
// workflow (nil: none).
func step(name string, needs ...string) *plan.Step {
	return &plan.Step{Name: name, Needs: needs, Image: "img", Script: "run " + name, WorkDir: sandbox.WorkspacePath}
}

func instance(key, file string, steps ...*plan.Step) *plan.Workflow {
	return &plan.Workflow{Key: key, File: file, Label: file, Steps: steps}
}

// newPlan numbers the steps and turns their needs (names) into ids.
func newPlan(run string, wfs ...*plan.Workflow) *plan.Plan {
	p := &plan.Plan{Trigger: plan.Trigger{RunID: run, Repo: "repo", Branch: "main", Commit: "c0ffee", Event: "push"}, Workflows: wfs}
	i := 0
	for _, wf := range wfs {
		for _, st := range wf.Steps {
			st.Index, st.ID, st.Workflow = i, wf.Key+"."+st.Name, wf
			for j, n := range st.Needs {
				st.Needs[j] = wf.Key + "." + n
			}
			i++
		}
	}
	return p
}

// sink records what Execute reports.
type sink struct {
	mu      sync.Mutex
	started map[string]time.Time
	ends    map[string][]engine.StepEnd
	order   []string // step ids in StepEnded order
	out     map[string]*syncBuffer
}

func newSink() *sink {
	return &sink{started: map[string]time.Time{}, ends: map[string][]engine.StepEnd{}, out: map[string]*syncBuffer{}}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (s *sink) StepStarted(st *plan.Step, at time.Time) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started[st.ID] = at
	b := &syncBuffer{}
	s.out[st.ID] = b
	return b
}

func (s *sink) StepEnded(st *plan.Step, end engine.StepEnd) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ends[st.ID] = append(s.ends[st.ID], end)
	s.order = append(s.order, st.ID)
}

// end returns the only end of step id, failing the test if there is not
// exactly one.
func (s *sink) end(t *testing.T, id string) engine.StepEnd {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.ends[id]); n != 1 {
		t.Fatalf("step %s ended %d times, want once", id, n)
	}
	return s.ends[id][0]
}

func (s *sink) output(id string) string {
	s.mu.Lock()
	b := s.out[id]
	s.mu.Unlock()
	if b == nil {
		return ""
	}
	return b.String()
}

// checkAllEnded fails unless every step of p ended exactly once.
func (s *sink) checkAllEnded(t *testing.T, p *plan.Plan) {
	t.Helper()
	for _, wf := range p.Workflows {
		for _, st := range wf.Steps {
			s.end(t, st.ID)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.ends {
		if !slices.ContainsFunc(p.Workflows, func(wf *plan.Workflow) bool {
			return slices.ContainsFunc(wf.Steps, func(st *plan.Step) bool { return st.ID == id })
		}) {
			t.Errorf("StepEnded for unknown step %s", id)
		}
	}
}

// want checks the status and error of step id.
func (s *sink) want(t *testing.T, id string, status engine.StepStatus, errText string) engine.StepEnd {
	t.Helper()
	end := s.end(t, id)
	if end.Status != status || end.Error != errText {
		t.Errorf("step %s: %s %q, want %s %q", id, end.Status, end.Error, status, errText)
	}
	return end
}

// execute runs p over fake with a deadline that only catches hangs.
func execute(t *testing.T, ctx context.Context, p *plan.Plan, fake *sandboxtest.Fake, s *sink, opts engine.Options) engine.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*hang)
	defer cancel()
	if opts.StopGrace == 0 {
		opts.StopGrace = time.Second
	}
	out := engine.Execute(ctx, p, fake, s, opts)
	for _, left := range fake.Leftovers() {
		// Other runs may share the fake.
		if strings.HasPrefix(left, "run/"+p.Trigger.RunID+"/") || strings.HasPrefix(left, "step/"+p.Trigger.RunID+"/") {
			t.Errorf("left after Execute: %v", left)
		}
	}
	s.checkAllEnded(t, p)
	return out
}

// barrier is closed once n steps reached it.
type barrier struct {
	mu   sync.Mutex
	n    int
	done chan struct{}
}

func newBarrier(n int) *barrier { return &barrier{n: n, done: make(chan struct{})} }

// wait reports whether all n steps arrived before ctx ended or hang passed.
func (b *barrier) wait(ctx context.Context) bool {
	b.mu.Lock()
	b.n--
	if b.n == 0 {
		close(b.done)
	}
	b.mu.Unlock()
	select {
	case <-b.done:
		return true
	case <-ctx.Done():
	case <-time.After(hang):
	}
	return false
}

// events returns fake's events of kind for step name (any workspace).
func events(fake *sandboxtest.Fake, kind, name string) []sandboxtest.Event {
	var out []sandboxtest.Event
	for _, e := range fake.Events() {
		if e.Kind == kind && e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// seq returns the position in fake's events of the first event of kind for
// step name, or -1.
func seq(fake *sandboxtest.Fake, kind, name string) int {
	return slices.IndexFunc(fake.Events(), func(e sandboxtest.Event) bool { return e.Kind == kind && e.Name == name })
}

func cond(t *testing.T, src string) *workflow.Condition {
	t.Helper()
	c, err := workflow.ParseCondition(src)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
