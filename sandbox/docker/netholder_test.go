package docker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// With a network holder, steps that run one after another join the
// holder's network namespace (same hostname, an interface on the
// workspace network); a step starting while another runs gets its own
// endpoint; DestroyRun removes the holder; a run without network has none.
func TestNetworkHolder(t *testing.T) {
	t.Parallel()
	dockertest.Require(t) // skips or fails without an engine and image
	d, err := docker.New(docker.Config{NetworkHolderImage: dockertest.Image}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := t.Context()
	instance, runID := dockertest.NewID(t), dockertest.NewID(t)
	t.Cleanup(func() {
		dockertest.Clean(t, d, instance)
		if left := dockertest.Leftovers(t, instance); len(left) > 0 {
			t.Errorf("objects left after the test: %v", left)
		}
	})
	run := &sandbox.RunSpec{ID: runID, Workspace: "ci", Instance: instance}
	if err := d.SetupRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	holder := "kod-" + runID + "-ci-net"
	var id string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		c, err := cli.ContainerInspect(ctx, holder)
		if err == nil && c.State != nil && c.State.Running {
			id = c.ID
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("holder %s not running: %v", holder, err)
		}
	}
	// The holder is used once SetupRun's background start has ended.
	next := 0
	for deadline := time.Now().Add(time.Minute); ; next++ {
		out, _ := runStep(t, d, run, shStep(next, "hostname"))
		if out == id[:12]+"\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("steps do not join the holder: hostname %q, holder %s", out, id[:12])
		}
	}
	for i := next + 1; i < next+3; i++ {
		out, st := runStep(t, d, run, shStep(i, "hostname; grep -c eth0 /proc/net/dev"))
		if st.ExitCode != 0 || out != id[:12]+"\n1\n" {
			t.Fatalf("step %d: %q %+v, want the holder's hostname %s and eth0", i, out, st, id[:12])
		}
	}
	next += 3
	long := shStep(next, "echo up; sleep 60")
	var lout buffer
	if err := d.StartStep(ctx, run, long, &lout); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); lout.String() == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the long step did not start")
		}
	}
	out, st := runStep(t, d, run, shStep(next+1, "hostname; grep -c eth0 /proc/net/dev"))
	if st.ExitCode != 0 || strings.HasPrefix(out, id[:12]) || !strings.HasSuffix(out, "\n1\n") {
		t.Errorf("step beside a running one: %q %+v, want its own hostname and eth0", out, st)
	}
	if err := d.StopStep(ctx, run, long, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WaitStep(ctx, run, long); err != nil {
		t.Fatal(err)
	}
	// Once the long step exited, the namespace is free again.
	out, _ = runStep(t, d, run, shStep(next+2, "hostname"))
	if out != id[:12]+"\n" {
		t.Errorf("step after the long one: %q, want the holder's hostname", out)
	}
	if err := d.DestroyRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if left := dockertest.RunLeftovers(t, instance, runID); len(left) > 0 {
		t.Fatalf("left after DestroyRun: %v", left)
	}

	// A workspace planned for one step gets no holder: nothing to share.
	single := &sandbox.RunSpec{ID: dockertest.NewID(t), Instance: instance, Steps: 1}
	if err := d.SetupRun(ctx, single); err != nil {
		t.Fatal(err)
	}
	out, st = runStep(t, d, single, shStep(0, "grep -c eth0 /proc/net/dev"))
	if st.ExitCode != 0 || out != "1\n" {
		t.Errorf("the single step: %q %+v", out, st)
	}
	if left := dockertest.RunLeftovers(t, instance, single.ID); len(left) != 2 { // network and volume
		t.Errorf("objects of a one-step workspace: %v", left)
	}
	if err := d.DestroyRun(ctx, single); err != nil {
		t.Fatal(err)
	}

	none := &sandbox.RunSpec{ID: dockertest.NewID(t), Instance: instance, Network: sandbox.NetworkNone}
	if err := d.SetupRun(ctx, none); err != nil {
		t.Fatal(err)
	}
	out, st = runStep(t, d, none, shStep(0, "grep -c eth0 /proc/net/dev || true"))
	if st.ExitCode != 0 || out != "0\n" {
		t.Errorf("step of a run without network: %q %+v", out, st)
	}
	if left := dockertest.RunLeftovers(t, instance, none.ID); len(left) != 1 { // the volume
		t.Errorf("objects of a run without network: %v", left)
	}
	if err := d.DestroyRun(ctx, none); err != nil {
		t.Fatal(err)
	}
}
