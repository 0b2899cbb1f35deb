package docker_test

import (
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// Two workspaces of one run (two workflows) have their own volume,
// network and step containers; DestroyRun of one leaves the other whole,
// and Sweep finds both by the run.
func TestWorkspacesOfOneRunAreIsolated(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	ctx := t.Context()
	instance, runID := dockertest.NewID(t), dockertest.NewID(t)
	t.Cleanup(func() {
		dockertest.Clean(t, d, instance)
		if left := dockertest.Leftovers(t, instance); len(left) > 0 {
			t.Errorf("objects left after the test: %v", left)
		}
	})
	a := &sandbox.RunSpec{ID: runID, Workspace: "build-a", Instance: instance}
	b := &sandbox.RunSpec{ID: runID, Workspace: "test-b", Instance: instance}
	for _, run := range []*sandbox.RunSpec{a, b} {
		if err := d.SetupRun(ctx, run); err != nil {
			t.Fatalf("SetupRun %s: %v", run.Workspace, err)
		}
	}
	// Indexes are unique per run: a has 0, b has 1.
	if out, st := runStep(t, d, a, shStep(0, "echo from-a > only-a; ls")); st.ExitCode != 0 {
		t.Fatalf("step in a: %+v %q", st, out)
	}
	out, st := runStep(t, d, b, shStep(1, "ls -A; test ! -e only-a && echo absent"))
	if st.ExitCode != 0 || strings.TrimSpace(out) != "absent" {
		t.Fatalf("step in b saw %q (state %+v), want an empty workspace", out, st)
	}
	// A finished step left in each workspace, as after a crash.
	for _, s := range []struct {
		run   *sandbox.RunSpec
		index int
	}{{a, 2}, {b, 3}} {
		step := shStep(s.index, "true")
		if err := d.StartStep(ctx, s.run, step, &buffer{}); err != nil {
			t.Fatalf("StartStep: %v", err)
		}
		if _, err := d.WaitStep(ctx, s.run, step); err != nil {
			t.Fatalf("WaitStep: %v", err)
		}
	}
	names := func(run *sandbox.RunSpec, index string) []string {
		key := "kod-" + run.ID + "-" + run.Workspace
		return []string{"container/" + key + "-" + index, "network/" + key, "volume/" + key + "-ws"}
	}
	want := slices.Sorted(slices.Values(append(names(a, "2"), names(b, "3")...)))
	if got := dockertest.Leftovers(t, instance); !slices.Equal(got, want) {
		t.Fatalf("objects = %v, want %v", got, want)
	}

	if err := d.DestroyRun(ctx, a); err != nil {
		t.Fatalf("DestroyRun a: %v", err)
	}
	if got, want := dockertest.Leftovers(t, instance), names(b, "3"); !slices.Equal(got, want) {
		t.Fatalf("after DestroyRun of a: %v, want %v", got, want)
	}
	out, st = runStep(t, d, b, shStep(4, "echo still-here"))
	if st.ExitCode != 0 || out != "still-here\n" {
		t.Fatalf("b after DestroyRun of a: %q %+v", out, st)
	}

	ids, err := d.Sweep(ctx, instance, func(string) bool { return false })
	if err != nil || !slices.Equal(ids, []string{runID}) {
		t.Fatalf("Sweep = %v, %v; want [%s]", ids, err, runID)
	}
}

func TestInvalidWorkspace(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	for _, ws := range []string{"-a", "a-", "A", "a_b", strings.Repeat("a", 41)} {
		err := d.SetupRun(t.Context(), &sandbox.RunSpec{ID: "abc", Workspace: ws, Instance: "x"})
		if err == nil || !strings.Contains(err.Error(), "workspace") {
			t.Errorf("workspace %q: err = %v, want a workspace error", ws, err)
		}
	}
}

// A step's stdin is an empty pipe that ends at once; git finds the
// workspace's safe.directory in the environment.
func TestStepStdinIsAnEmptyPipe(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	script := `[ -p /dev/stdin ] && echo pipe; n=$(cat | wc -c); echo "read $n"; ` +
		`echo "$GIT_CONFIG_COUNT $GIT_CONFIG_KEY_0 $GIT_CONFIG_VALUE_0"`
	out, st := runStep(t, d, run, shStep(0, script))
	want := "pipe\nread 0\n1 safe.directory /workspace\n"
	if st.ExitCode != 0 || out != want {
		t.Errorf("output %q (state %+v), want %q", out, st, want)
	}
}

// A step limited to one whole CPU is pinned to one, so nproc agrees with
// the quota; two such steps at once get different CPUs.
func TestWholeCPULimitPinsTheStep(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	if runtime.NumCPU() < 2 {
		t.Skip("needs a host with two CPUs or more")
	}
	run := testRun(t, d, sandbox.NetworkNone)
	ctx := t.Context()
	var outs [2]buffer
	steps := [2]*sandbox.StepSpec{}
	for i := range steps {
		steps[i] = shStep(i, "nproc; grep Cpus_allowed_list /proc/self/status | tr -d ' \\t' | cut -d: -f2")
		steps[i].Limits.NanoCPUs = 1e9
		if err := d.StartStep(ctx, run, steps[i], &outs[i]); err != nil {
			t.Fatalf("StartStep: %v", err)
		}
	}
	var cpus [2]string
	for i, s := range steps {
		if _, err := d.WaitStep(ctx, run, s); err != nil {
			t.Fatalf("WaitStep: %v", err)
		}
		if err := d.DestroyStep(ctx, run, s); err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(outs[i].String())
		if len(lines) != 2 || lines[0] != "1" {
			t.Fatalf("step %d: %q, want nproc 1 and its CPU", i, outs[i].String())
		}
		cpus[i] = lines[1]
	}
	if cpus[0] == cpus[1] {
		t.Errorf("both steps pinned to CPU %s", cpus[0])
	}
	// Fractional: the quota alone, every CPU visible.
	step := shStep(2, "nproc")
	step.Limits.NanoCPUs = 5e8
	if out, _ := runStep(t, d, run, step); strings.TrimSpace(out) != strconv.Itoa(runtime.NumCPU()) {
		t.Errorf("0.5 CPU: nproc %q, want the host's %d", out, runtime.NumCPU())
	}
}
