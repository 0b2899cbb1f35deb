package docker_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// testRun sets up a run of a fresh instance and makes sure, when the test
// ends, that nothing labelled with that instance is left.
func testRun(t *testing.T, d *docker.Docker, network string) *sandbox.RunSpec {
	t.Helper()
	run := &sandbox.RunSpec{
		ID:       dockertest.NewID(t),
		Instance: dockertest.NewID(t),
		Network:  network,
		Labels:   map[string]string{"dev.kod.test": t.Name()},
	}
	t.Cleanup(func() {
		if err := d.DestroyRun(context.Background(), run); err != nil {
			t.Errorf("DestroyRun: %v", err)
		}
		dockertest.Clean(t, d, run.Instance)
		if left := dockertest.Leftovers(t, run.Instance); len(left) > 0 {
			t.Errorf("objects left after the test: %v", left)
		}
	})
	if err := d.SetupRun(t.Context(), run); err != nil {
		t.Fatalf("SetupRun: %v", err)
	}
	return run
}

// buffer is an io.Writer safe to read while a step writes to it.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func shStep(index int, script string) *sandbox.StepSpec {
	return &sandbox.StepSpec{
		Index:   index,
		Name:    "step",
		Image:   dockertest.Image,
		Pull:    sandbox.PullNever,
		Command: []string{"/bin/sh", "-e", "-c", script},
	}
}

// runStep starts, waits for and destroys step, returning its output.
func runStep(t *testing.T, d *docker.Docker, run *sandbox.RunSpec, step *sandbox.StepSpec) (string, sandbox.ExitState) {
	t.Helper()
	ctx := t.Context()
	var out buffer
	if err := d.StartStep(ctx, run, step, &out); err != nil {
		t.Fatalf("StartStep %d: %v", step.Index, err)
	}
	state, err := d.WaitStep(ctx, run, step)
	if err != nil {
		t.Fatalf("WaitStep %d: %v", step.Index, err)
	}
	if err := d.DestroyStep(ctx, run, step); err != nil {
		t.Fatalf("DestroyStep %d: %v", step.Index, err)
	}
	return out.String(), state
}

func TestStepOutputAndExitCode(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkBridge)

	// stdout and stderr are two pipes read separately by the engine: each
	// keeps its order (a before c) but b may land anywhere.
	out, state := runStep(t, d, run, shStep(0, "echo a; echo b >&2; echo c; exit 3"))
	if !slices.Contains([]string{"a\nb\nc\n", "a\nc\nb\n", "b\na\nc\n"}, out) {
		t.Errorf("output = %q, want a, b and c lines with a before c", out)
	}
	if state.ExitCode != 3 || state.OOMKilled {
		t.Errorf("exit state = %+v, want code 3, not OOM-killed", state)
	}

	// Writes apart in time keep their order across the two streams.
	const script = "for i in 1 2 3; do echo out$i; sleep 0.2; echo err$i >&2; sleep 0.2; done"
	out, _ = runStep(t, d, run, shStep(2, script))
	if want := "out1\nerr1\nout2\nerr2\nout3\nerr3\n"; out != want {
		t.Errorf("output = %q, want %q", out, want)
	}

	// One pipe for both (what a script gets with `exec 2>&1`) keeps the
	// exact order.
	out, _ = runStep(t, d, run, shStep(3, "exec 2>&1; echo a; echo b >&2; echo c"))
	if out != "a\nb\nc\n" {
		t.Errorf("with exec 2>&1: output = %q, want %q", out, "a\nb\nc\n")
	}

	// Env, working directory and the process-group variable reach the step.
	step := shStep(1, `echo "$GREETING $(pwd) $TINI_KILL_PROCESS_GROUP"`)
	step.Env = []string{"GREETING=hello"}
	step.WorkDir = "/tmp"
	out, state = runStep(t, d, run, step)
	if out != "hello /tmp 1\n" || state.ExitCode != 0 {
		t.Errorf("output %q, state %+v; want %q, exit 0", out, state, "hello /tmp 1\n")
	}
}

// failingWriter rejects every write, like a log sink whose disk is full.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestOutputSinkFailureDoesNotBlockStep(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	ctx := t.Context()

	// Far more output than the pipes buffer: the step would hang if nobody
	// drained the stream after the sink failed.
	step := shStep(0, "head -c 4000000 /dev/zero; exit 5")
	if err := d.StartStep(ctx, run, step, failingWriter{}); err != nil {
		t.Fatalf("StartStep: %v", err)
	}
	state, err := d.WaitStep(ctx, run, step)
	if err == nil || !strings.Contains(err.Error(), "disk full") || state.ExitCode != 5 {
		t.Errorf("WaitStep = %+v, %v; want exit 5 and the sink's error", state, err)
	}
	if err := d.DestroyStep(ctx, run, step); err != nil {
		t.Errorf("DestroyStep: %v", err)
	}
}

func TestWorkspace(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkBridge)
	ctx := t.Context()

	// Stream a tar built on the fly, as the runner streams `git archive`.
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		files := []struct{ name, body string }{{"README", "hello workspace\n"}, {"src/main.go", "package main\n"}}
		err := tw.WriteHeader(&tar.Header{Name: "src/", Typeflag: tar.TypeDir, Mode: 0o755})
		for _, f := range files {
			if err == nil {
				err = tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))})
			}
			if err == nil {
				_, err = io.WriteString(tw, f.body)
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	if err := d.LoadWorkspace(ctx, run, dockertest.Image, pr); err != nil {
		t.Fatalf("LoadWorkspace: %v", err)
	}

	out, state := runStep(t, d, run, shStep(0, "cat README src/main.go; echo from-step-0 > made; hostname"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if state.ExitCode != 0 || len(lines) != 3 || lines[0] != "hello workspace" || lines[1] != "package main" {
		t.Fatalf("step 0: output %q, state %+v", out, state)
	}
	host0 := lines[2]

	out, state = runStep(t, d, run, shStep(1, "cat /workspace/made; hostname"))
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if state.ExitCode != 0 || len(lines) != 2 || lines[0] != "from-step-0" {
		t.Fatalf("step 1: output %q, state %+v", out, state)
	}
	if lines[1] == host0 {
		t.Errorf("steps 0 and 1 share hostname %q", host0)
	}
}

func TestStopStepRunsTrap(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	ctx := t.Context()

	step := shStep(0, "trap 'echo bye; exit 3' TERM; echo ready; sleep 300")
	var out buffer
	if err := d.StartStep(ctx, run, step, &out); err != nil {
		t.Fatalf("StartStep: %v", err)
	}
	defer d.DestroyStep(context.Background(), run, step)
	waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })

	// A grace far longer than any stop: exit code 3 is the trap's own exit,
	// 137 would be the SIGKILL at the end of the grace (SIGTERM lost).
	if err := d.StopStep(ctx, run, step, 2*time.Minute); err != nil {
		t.Fatalf("StopStep: %v", err)
	}
	state, err := d.WaitStep(ctx, run, step)
	if err != nil {
		t.Fatalf("WaitStep: %v", err)
	}
	if state.ExitCode != 3 || !strings.Contains(out.String(), "bye") {
		t.Errorf("output %q, state %+v; want the trap's bye and exit 3 (SIGTERM did not reach the shell's trap)", out.String(), state)
	}
	// Stopping or destroying twice is fine.
	if err := d.StopStep(ctx, run, step, time.Second); err != nil {
		t.Errorf("second StopStep: %v", err)
	}
	for range 2 {
		if err := d.DestroyStep(ctx, run, step); err != nil {
			t.Errorf("DestroyStep: %v", err)
		}
	}
}

func TestStopStepKillsAfterGrace(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	ctx := t.Context()

	// An ignored signal stays ignored in children, so sleep ignores TERM too.
	step := shStep(0, "trap '' TERM; echo ready; sleep 300")
	step.Limits.MemoryBytes = 64 << 20
	var out buffer
	if err := d.StartStep(ctx, run, step, &out); err != nil {
		t.Fatalf("StartStep: %v", err)
	}
	defer d.DestroyStep(context.Background(), run, step)
	waitFor(t, func() bool { return strings.Contains(out.String(), "ready") })
	start := time.Now()
	if err := d.StopStep(ctx, run, step, 500*time.Millisecond); err != nil {
		t.Fatalf("StopStep: %v", err)
	}
	state, err := d.WaitStep(ctx, run, step)
	if err != nil {
		t.Fatalf("WaitStep: %v", err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("killed after %v, want the grace rounded up to 1s", took)
	}
	// The SIGKILL came from StopStep: not an OOM kill despite the limit.
	if state.ExitCode != 137 || state.OOMKilled {
		t.Errorf("exit state = %+v, want 137, not OOM-killed", state)
	}
}

func TestWaitStepHonoursContext(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)

	step := shStep(0, "sleep 300")
	if err := d.StartStep(t.Context(), run, step, io.Discard); err != nil {
		t.Fatalf("StartStep: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := d.WaitStep(ctx, run, step); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitStep = %v, want deadline exceeded", err)
	}
	// The step still runs; destroying it ends WaitStep's goroutines.
	if err := d.DestroyStep(t.Context(), run, step); err != nil {
		t.Fatalf("DestroyStep: %v", err)
	}
}

func TestMemoryLimitOOMKilled(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)

	// dd allocates and fills a 200 MiB buffer.
	step := shStep(0, "dd if=/dev/zero of=/dev/null bs=200M count=1")
	step.Limits = sandbox.Limits{MemoryBytes: 32 << 20}
	_, state := runStep(t, d, run, step)
	if !state.OOMKilled || state.ExitCode != 137 {
		t.Errorf("exit state = %+v, want OOM-killed with 137", state)
	}

	step = shStep(1, "dd if=/dev/zero of=/dev/null bs=8M count=1")
	step.Limits = sandbox.Limits{MemoryBytes: 32 << 20}
	_, state = runStep(t, d, run, step)
	if state.OOMKilled || state.ExitCode != 0 {
		t.Errorf("within the limit: exit state = %+v, want 0", state)
	}
}

func TestPIDsLimit(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)

	step := shStep(0, "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait")
	step.Limits = sandbox.Limits{PIDs: 5}
	out, state := runStep(t, d, run, step)
	if state.ExitCode == 0 || !strings.Contains(out, "can't fork") {
		t.Errorf("output %q, state %+v; want a fork failure", out, state)
	}
}

func TestMissingImage(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkNone)
	const img = "kod-test.invalid/no/such-image:v0"

	tests := []struct {
		pull sandbox.PullPolicy
		want string
	}{
		{sandbox.PullNever, `image "` + img + `" is not present (pull policy never)`},
		{sandbox.PullIfNotPresent, `image "` + img + `" is not present and could not be pulled: `},
		{sandbox.PullAlways, `image "` + img + `" could not be pulled (pull policy always): `},
		{"sometimes", `unknown pull policy "sometimes"`},
	}
	for i, tt := range tests {
		t.Run(string(tt.pull), func(t *testing.T) {
			step := shStep(i, "true")
			step.Image = img
			step.Pull = tt.pull
			err := d.StartStep(t.Context(), run, step, io.Discard)
			var se *sandbox.StepError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("StartStep = %v, want *StepError containing %q", err, tt.want)
			}
			t.Log(err)
			if err := d.DestroyStep(t.Context(), run, step); err != nil {
				t.Errorf("DestroyStep after failed start: %v", err)
			}
		})
	}
}

// BenchmarkStep measures one step's round trip: create, attach, start,
// wait (a step running `true`), inspect and remove.
func BenchmarkStep(b *testing.B) {
	d := dockertest.Require(b)
	run := &sandbox.RunSpec{ID: dockertest.NewID(b), Instance: dockertest.NewID(b), Network: sandbox.NetworkNone}
	b.Cleanup(func() { dockertest.Clean(b, d, run.Instance) })
	ctx := b.Context()
	if err := d.SetupRun(ctx, run); err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		step := shStep(i, "true")
		i++
		if err := d.StartStep(ctx, run, step, io.Discard); err != nil {
			b.Fatal(err)
		}
		if _, err := d.WaitStep(ctx, run, step); err != nil {
			b.Fatal(err)
		}
		if err := d.DestroyStep(ctx, run, step); err != nil {
			b.Fatal(err)
		}
	}
}

// waitFor polls cond for up to a minute (catches hangs only).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A workspace tar whose producer fails midway (git refusing a tree, a
// broken upload) is reported as that failure, not as the engine being
// unavailable (the request body stopping looked like a failed connection,
// with the socket's URL in the message).
func TestWorkspaceTarFailsMidway(t *testing.T) {
	t.Parallel()
	d := dockertest.Require(t)
	run := testRun(t, d, sandbox.NetworkBridge)
	ctx := t.Context()

	cause := errors.New("git read-tree: refusing to check out .git/config")
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.WriteHeader(&tar.Header{Name: "README", Mode: 0o644, Size: 1 << 20})
		if err == nil {
			_, err = pw.Write(bytes.Repeat([]byte("x"), 64<<10))
		}
		if err == nil {
			err = cause
		}
		pw.CloseWithError(err)
	}()
	err := d.LoadWorkspace(ctx, run, dockertest.Image, pr)
	if !errors.Is(err, cause) {
		t.Fatalf("LoadWorkspace = %v, want the tar producer's error", err)
	}
	if errors.Is(err, sandbox.ErrUnavailable) || strings.Contains(err.Error(), "docker.sock") || strings.Contains(err.Error(), "error during connect") {
		t.Errorf("LoadWorkspace = %v: a failing tar is reported as an engine failure", err)
	}
}
