package engine_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/runner/engine"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// waitFor polls cond until it holds; the deadline only catches hangs.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hang)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Free slots go to the waiting runs in turn, first come first served
// within a run.
func TestSlotsRoundRobinBetweenRuns(t *testing.T) {
	ctx := context.Background()
	s := engine.NewSlots(1)
	if err := s.Acquire(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	granted := make(chan string)
	queue := func(run, name string) {
		n := engine.Waiting(s)
		go func() {
			if err := s.Acquire(ctx, run); err != nil {
				t.Error(err)
			}
			granted <- name
		}()
		waitFor(t, name+" waiting", func() bool { return engine.Waiting(s) == n+1 })
	}
	for _, name := range []string{"a1", "a2", "a3", "a4"} {
		queue("a", name)
	}
	queue("b", "b1")
	queue("b", "b2")
	var order []string
	next := func() {
		s.Release()
		select {
		case name := <-granted:
			order = append(order, name)
		case <-time.After(hang):
			t.Fatal("no slot granted")
		}
	}
	next()
	queue("c", "c1") // a run arriving later gets its turn
	for range 6 {
		next()
	}
	want := []string{"a1", "b1", "c1", "a2", "b2", "a3", "a4"}
	if !slices.Equal(order, want) {
		t.Errorf("slots went to %v, want %v", order, want)
	}
	s.Release()
	if err := s.Acquire(ctx, "x"); err != nil || engine.Waiting(s) != 0 {
		t.Errorf("a free slot was not taken at once: %v", err)
	}
}

// A step that stops waiting leaves the queue; no slot is lost.
func TestSlotsCancelledWait(t *testing.T) {
	s := engine.NewSlots(1)
	if err := s.Acquire(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Acquire(ctx, "y") }()
	waitFor(t, "y waiting", func() bool { return engine.Waiting(s) == 1 })
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Acquire: %v, want context.Canceled", err)
	}
	if engine.Waiting(s) != 0 {
		t.Fatal("a cancelled wait stayed queued")
	}
	s.Release()
	short, cancel2 := context.WithTimeout(context.Background(), hang)
	defer cancel2()
	if err := s.Acquire(short, "z"); err != nil {
		t.Fatalf("the slot was lost: %v", err)
	}
}

// Through Execute: two runs share two slots; never more than two step
// containers run, waiting steps are not reported started, and a slot freed
// while both runs wait goes to each run in turn although the first run has
// more steps waiting.
func TestSlotsBoundExecute(t *testing.T) {
	tokens := make(chan struct{}) // each lets one step of run a exit
	fake := sandboxtest.New(func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if strings.HasPrefix(st.Name, "a") {
			select {
			case <-tokens:
			case <-ctx.Done():
				return 1
			}
		}
		return 0
	})
	starts := func() []string {
		var names []string
		for _, e := range fake.Events() {
			if e.Kind == "start" {
				names = append(names, e.Name)
			}
		}
		return names
	}
	slots := engine.NewSlots(2)
	pa := newPlan("ra", instance("ci", "ci.toml", step("a1"), step("a2"), step("a3"), step("a4"), step("a5"), step("a6")))
	pb := newPlan("rb", instance("ci", "ci.toml", step("b1"), step("b2")))
	sa, sb := newSink(), newSink()
	outs := make(chan engine.Outcome, 2)
	go func() { outs <- execute(t, context.Background(), pa, fake, sa, engine.Options{Slots: slots}) }()
	waitFor(t, "run a to fill the slots", func() bool { return fake.Running() == 2 && engine.Waiting(slots) == 4 })
	go func() { outs <- execute(t, context.Background(), pb, fake, sb, engine.Options{Slots: slots}) }()
	waitFor(t, "run b to wait", func() bool { return engine.Waiting(slots) == 6 })
	sb.mu.Lock()
	if len(sb.started) != 0 {
		t.Error("a step waiting for a slot was reported started")
	}
	sb.mu.Unlock()
	// First free slot: run a's turn (it waited first).
	tokens <- struct{}{}
	waitFor(t, "a third start", func() bool { return len(starts()) == 3 })
	// Next: run b's, although run a has three more waiting.
	tokens <- struct{}{}
	waitFor(t, "a fourth start", func() bool { return len(starts()) >= 4 })
	if got := starts(); !strings.HasPrefix(got[2], "a") || !strings.HasPrefix(got[3], "b") {
		t.Errorf("steps started in order %v, want a, a, a, b first", got)
	}
	close(tokens)
	for range 2 {
		if out := <-outs; !out.Success {
			t.Errorf("outcome %+v", out)
		}
	}
	if m := fake.MaxRunning(); m > 2 {
		t.Errorf("%d steps ran at once with 2 slots", m)
	}
}
