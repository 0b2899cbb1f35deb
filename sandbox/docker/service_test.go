package docker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// listener is a service that answers "pong" on port 5432, standing in for
// a database; it becomes ready (the file /ready exists) after delay.
func listener(delay string) *sandbox.ServiceSpec {
	return &sandbox.ServiceSpec{
		Name:    "db",
		Image:   dockertest.Image,
		Pull:    sandbox.PullNever,
		Command: []string{"/bin/sh", "-c", "echo starting db; sleep " + delay + "; touch /tmp/ready; echo db ready; exec nc -ll -p 5432 -e echo pong"},
	}
}

// TestServiceReachableByName: a step on the run's network reaches the
// service by its name once WaitServiceReady returned; the service's output
// goes to its writer; DestroyService leaves nothing of it.
func TestServiceReachableByName(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	ctx := t.Context()
	run := &sandbox.RunSpec{ID: dockertest.NewID(t), Instance: dockertest.NewID(t), Workspace: "ci"}
	t.Cleanup(func() {
		if err := d.DestroyRun(context.Background(), run); err != nil {
			t.Errorf("DestroyRun: %v", err)
		}
		dockertest.Clean(t, d, run.Instance)
	})
	if err := d.SetupRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	svc := listener("0")
	var log buffer
	if err := d.StartService(ctx, run, svc, &log); err != nil {
		t.Fatalf("StartService: %v", err)
	}
	if err := d.WaitServiceReady(ctx, run, svc, []string{"/bin/sh", "-c", "test -f /tmp/ready"}, time.Minute); err != nil {
		t.Fatalf("WaitServiceReady: %v", err)
	}
	// The listener may still be a moment from accepting after /tmp/ready.
	out, state := runStep(t, d, run, shStep(0, "for i in $(seq 50); do r=$(nc db 5432 </dev/null) && [ -n \"$r\" ] && { echo $r; exit 0; }; sleep 0.2; done; exit 1"))
	if state.ExitCode != 0 || strings.TrimSpace(out) != "pong" {
		t.Errorf("step: exit %d, output %q, want pong", state.ExitCode, out)
	}
	if err := d.DestroyService(ctx, run, svc); err != nil {
		t.Fatalf("DestroyService: %v", err)
	}
	if err := d.DestroyService(ctx, run, svc); err != nil {
		t.Errorf("second DestroyService: %v", err)
	}
	if !strings.Contains(log.String(), "starting db") {
		t.Errorf("service output %q lacks its first line", log.String())
	}
	for _, o := range dockertest.RunLeftovers(t, run.Instance, run.ID) {
		if strings.HasPrefix(o, "container/") {
			t.Errorf("left after DestroyService: %s", o)
		}
	}
}

// TestServiceReadyDelay: a ready command that succeeds only after the
// service slept 2 s keeps WaitServiceReady waiting; a timeout shorter
// than that fails with the service's output.
func TestServiceReadyDelay(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkBridge)
	ctx := t.Context()
	svc := listener("2")
	if err := d.StartService(ctx, run, svc, &buffer{}); err != nil {
		t.Fatalf("StartService: %v", err)
	}
	ready := []string{"/bin/sh", "-c", "test -f /tmp/ready"}
	err := d.WaitServiceReady(ctx, run, svc, ready, 300*time.Millisecond)
	var se *sandbox.ServiceError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "not ready") || !strings.Contains(err.Error(), "starting db") {
		t.Fatalf("short timeout: %v, want a ServiceError with the output", err)
	}
	if err := d.WaitServiceReady(ctx, run, svc, ready, 2*time.Minute); err != nil {
		t.Fatalf("WaitServiceReady: %v", err)
	}
	// Ready only once the file exists: the service had printed that.
	out, _ := runStep(t, d, run, shStep(0, "nc db 5432 </dev/null || true"))
	_ = out
	if err := d.DestroyService(ctx, run, svc); err != nil {
		t.Fatal(err)
	}
}

// TestServiceExitsAtOnce: a service that exits fails WaitServiceReady
// with its exit code and last output lines.
func TestServiceExitsAtOnce(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkBridge)
	ctx := t.Context()
	svc := &sandbox.ServiceSpec{Name: "db", Image: dockertest.Image, Pull: sandbox.PullNever,
		Command: []string{"/bin/sh", "-c", "echo FATAL: bad config line 3; exit 3"}}
	if err := d.StartService(ctx, run, svc, &buffer{}); err != nil {
		t.Fatalf("StartService: %v", err)
	}
	err := d.WaitServiceReady(ctx, run, svc, []string{"true"}, time.Minute)
	var se *sandbox.ServiceError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "exited with code 3") || se.Log != "FATAL: bad config line 3" {
		t.Fatalf("WaitServiceReady: %#v (%v)", se, err)
	}
	if err := d.DestroyService(context.WithoutCancel(ctx), run, svc); err != nil {
		t.Fatal(err)
	}
}

// TestServiceSpecErrors: names that are no hostnames and runs without a
// network are refused before anything is created.
func TestServiceSpecErrors(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	svc := listener("0")
	var se *sandbox.StepError
	if err := d.StartService(t.Context(), run, svc, &buffer{}); !errors.As(err, &se) || !strings.Contains(err.Error(), "no network") {
		t.Errorf("service in a run without network: %v", err)
	}
	run.Network = sandbox.NetworkBridge
	svc.Name = "Bad_Name"
	if err := d.StartService(t.Context(), run, svc, &buffer{}); !errors.As(err, &se) {
		t.Errorf("bad name: %v", err)
	}
}

// TestDBImage: kod/db:local (scripts/build-images) is ready only after
// DB_DELAY, then answers steps by the service's name.
func TestDBImage(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	if ok, err := d.ImagePresent(t.Context(), "kod/db:local"); err != nil || !ok {
		t.Fatalf("kod/db:local is missing (run scripts/build-images): %v", err)
	}
	run := testRun(t, d, sandbox.NetworkBridge)
	svc := &sandbox.ServiceSpec{Name: "db", Image: "kod/db:local", Pull: sandbox.PullNever, Env: []string{"DB_DELAY=1", "DB_NAME=app"}}
	var log buffer
	if err := d.StartService(t.Context(), run, svc, &log); err != nil {
		t.Fatal(err)
	}
	if err := d.WaitServiceReady(t.Context(), run, svc, []string{"kod-db-ready"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "ready to accept connections") {
		t.Errorf("ready before the service said so: %q", log.String())
	}
	out, _ := runStep(t, d, run, shStep(0, "for i in $(seq 50); do r=$(nc db 5432 </dev/null) && [ -n \"$r\" ] && { echo $r; exit 0; }; sleep 0.2; done; exit 1"))
	if strings.TrimSpace(out) != "pong app" {
		t.Errorf("step got %q", out)
	}
}
