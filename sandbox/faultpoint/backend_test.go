package faultpoint_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/faultpoint"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// TestBackendPointsInOrder: a run's backend calls pass the backend points
// in lifecycle order, and a point's error is the call's error.
func TestBackendPointsInOrder(t *testing.T) {
	t.Parallel()
	var seen []faultpoint.Point
	b := &faultpoint.Backend{Inner: sandboxtest.New(nil), At: func(_ context.Context, p faultpoint.Point, s faultpoint.Site) error {
		seen = append(seen, p)
		if p == faultpoint.StepExit && s.Step == 1 {
			return faultpoint.Injected(p)
		}
		return nil
	}}
	ctx := context.Background()
	run := &sandbox.RunSpec{ID: "r1", Instance: "i"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.SetupRun(ctx, run))
	must(b.LoadWorkspace(ctx, run, "img", strings.NewReader("")))
	for i := range 2 {
		step := &sandbox.StepSpec{Index: i, Image: "img"}
		must(b.StartStep(ctx, run, step, io.Discard))
		_, err := b.WaitStep(ctx, run, step)
		if i == 1 && (!faultpoint.IsInjected(err) || !strings.Contains(err.Error(), "container engine unavailable: injected fault at step-exit")) {
			t.Errorf("wait of step 1: %v", err)
		}
		must(b.DestroyStep(ctx, run, step))
	}
	must(b.DestroyRun(ctx, run))
	step := []faultpoint.Point{faultpoint.StepCreate, faultpoint.StepStart, faultpoint.StepRunning, faultpoint.StepExit, faultpoint.StepCleanup}
	want := append([]faultpoint.Point{faultpoint.Setup, faultpoint.Workspace}, append(step, step...)...)
	want = append(want, faultpoint.RunCleanup)
	if !slices.Equal(seen, want) {
		t.Errorf("points %v\nwant %v", seen, want)
	}
}

// TestArmFailsTheNextCallOnce: an armed failure (what a runner point's
// fault does) fails the run's next call only.
func TestArmFailsTheNextCallOnce(t *testing.T) {
	t.Parallel()
	b := &faultpoint.Backend{Inner: sandboxtest.New(nil)}
	ctx := context.Background()
	run := &sandbox.RunSpec{ID: "r1", Instance: "i"}
	other := &sandbox.RunSpec{ID: "r2", Instance: "i"}
	b.Arm(run.ID, faultpoint.Injected(faultpoint.Dispatched))
	if err := b.SetupRun(ctx, other); err != nil {
		t.Errorf("another run's call: %v", err)
	}
	if err := b.SetupRun(ctx, run); !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("armed call: %v", err)
	}
	if err := b.SetupRun(ctx, run); err != nil {
		t.Errorf("the call after: %v", err)
	}
}
