package docker_test

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

func TestNetworkModes(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	const script = "sed -n '3,$s/:.*//p' /proc/net/dev | tr -d ' ' | sort | tr '\\n' ' '"
	for _, tt := range []struct{ network, want string }{
		{sandbox.NetworkNone, "lo "},
		{sandbox.NetworkBridge, "eth0 lo "},
	} {
		run := testRun(t, d, tt.network)
		out, _ := runStep(t, d, run, shStep(0, script))
		if out != tt.want {
			t.Errorf("network %q: interfaces %q, want %q", tt.network, out, tt.want)
		}
	}
}

func TestDestroyRunAndSweep(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	ctx := t.Context()
	instance := dockertest.NewID(t)
	t.Cleanup(func() { dockertest.Clean(t, d, instance) })
	newRun := func() *sandbox.RunSpec {
		run := &sandbox.RunSpec{ID: dockertest.NewID(t), Instance: instance}
		// Twice: a retried setup reuses what the first one made.
		for range 2 {
			if err := d.SetupRun(ctx, run); err != nil {
				t.Fatalf("SetupRun: %v", err)
			}
		}
		// A finished step that nobody destroyed, as after a crash.
		step := shStep(0, "true")
		if err := d.StartStep(ctx, run, step, io.Discard); err != nil {
			t.Fatalf("StartStep: %v", err)
		}
		if _, err := d.WaitStep(ctx, run, step); err != nil {
			t.Fatalf("WaitStep: %v", err)
		}
		return run
	}
	kept, swept := newRun(), newRun()
	names := func(run *sandbox.RunSpec) []string {
		return []string{"container/kod-" + run.ID + "-0", "network/kod-" + run.ID, "volume/kod-" + run.ID + "-ws"}
	}
	if got, want := dockertest.Leftovers(t, instance), slices.Sorted(slices.Values(append(names(kept), names(swept)...))); !slices.Equal(got, want) {
		t.Fatalf("objects = %v, want %v", got, want)
	}

	ids, err := d.Sweep(ctx, instance, func(id string) bool { return id == kept.ID })
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	if !slices.Equal(ids, []string{swept.ID}) {
		t.Errorf("Sweep removed runs %v, want [%s]", ids, swept.ID)
	}
	if got := dockertest.Leftovers(t, instance); !slices.Equal(got, names(kept)) {
		t.Errorf("after Sweep: %v, want %v", got, names(kept))
	}

	for range 2 {
		if err := d.DestroyRun(ctx, kept); err != nil {
			t.Errorf("DestroyRun: %v", err)
		}
	}
	if err := d.DestroyRun(ctx, &sandbox.RunSpec{ID: dockertest.NewID(t), Instance: instance}); err != nil {
		t.Errorf("DestroyRun of a run never set up: %v", err)
	}
	if left := dockertest.Leftovers(t, instance); len(left) > 0 {
		t.Errorf("after DestroyRun: %v", left)
	}
}

func TestEngineUnavailable(t *testing.T) {
	t.Parallel()
	d, err := docker.New(docker.Config{Host: "unix://" + t.TempDir() + "/no.sock"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Ping(t.Context()); !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrUnavailable", err)
	}
	run := &sandbox.RunSpec{ID: "abc", Instance: "x"}
	if err := d.SetupRun(t.Context(), run); !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("SetupRun = %v, want ErrUnavailable", err)
	}
	err = d.StartStep(t.Context(), run, shStep(0, "true"), io.Discard)
	var se *sandbox.StepError
	if !errors.Is(err, sandbox.ErrUnavailable) || errors.As(err, &se) {
		t.Errorf("StartStep = %v, want ErrUnavailable and no StepError", err)
	}
}

func TestInvalidRunID(t *testing.T) {
	t.Parallel()
	d, err := docker.New(docker.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, id := range []string{"", "Abc", "a-b", "../x"} {
		if err := d.SetupRun(t.Context(), &sandbox.RunSpec{ID: id}); err == nil {
			t.Errorf("SetupRun accepted run id %q", id)
		}
	}
}

// A backend that is closed (server restart) leaves its steps running; a new
// backend can still wait for them by name and destroy the run.
func TestStepOutlivesClosedBackend(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	old, err := docker.New(docker.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	step := shStep(0, "sleep 1; exit 7")
	if err := old.StartStep(t.Context(), run, step, io.Discard); err != nil {
		t.Fatalf("StartStep: %v", err)
	}
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	state, err := d.WaitStep(t.Context(), run, step)
	if err != nil || state.ExitCode != 7 {
		t.Fatalf("WaitStep by a new backend = %+v, %v; want exit 7", state, err)
	}
}
