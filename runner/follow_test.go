package runner_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
)

// collector gathers a log stream as text: "==> name" before each step,
// "[caught up]" never (it only counts them).
type collector struct {
	mu       sync.Mutex
	b        bytes.Buffer
	caughtUp int
	events   []runner.LogEvent
}

func (c *collector) emit(ev *runner.LogEvent) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := *ev
	e.Data = nil
	c.events = append(c.events, e)
	switch ev.Kind {
	case runner.LogStepStarted:
		fmt.Fprintf(&c.b, "==> %s\n", ev.Name)
	case runner.LogOutput:
		c.b.Write(ev.Data)
	case runner.LogCaughtUp:
		c.caughtUp++
	}
	return nil
}

func (c *collector) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

const twoSteps = `
[[steps]]
name = "first"
run = "true"
[[steps]]
name = "second"
run = "true"
`

// TestFollowBacklogThenLive: a follower joining mid-step gets the backlog
// first, then lines as they are written, in order, and its stream ends
// when the run ends; a follower of the finished run reads the same text
// from the files, and ?step selects one step.
func TestFollowBacklogThenLive(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	printed := make(chan struct{})
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if st.Name == "first" {
			fmt.Fprint(out, "backlog 1\nbacklog 2\n")
			close(printed)
			<-release
			fmt.Fprint(out, "live 1\n")
			time.Sleep(50 * time.Millisecond)
			fmt.Fprint(out, "live 2 without newline")
			return 0
		}
		fmt.Fprint(out, "second step\n")
		return 0
	}
	r, store, _, done := fakeRunner(t, runner.Config{}, staticSource{twoSteps}, play)
	run := enqueue(t, r, "main")
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	<-printed
	stored, err := store.GetRun(ctx, run.ID)
	if err != nil || stored.CurrentStep == nil || stored.CurrentStep.Name != "first" || stored.CurrentStep.Index != 0 {
		t.Errorf("current step while the first step runs: %+v %v", stored.CurrentStep, err)
	}
	var c collector
	followed := make(chan error, 1)
	go func() {
		followed <- r.StreamLogs(ctx, run.ID, runner.LogOptions{Follow: true, Idle: time.Hour}, c.emit)
	}()
	waitUntil(t, func() bool { return strings.Contains(c.String(), "backlog 2\n") })
	close(release)
	final := wait(t, done)
	select {
	case err := <-followed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the follower did not end with the run")
	}
	const want = "==> first\nbacklog 1\nbacklog 2\nlive 1\nlive 2 without newline==> second\nsecond step\n"
	if got := c.String(); got != want {
		t.Errorf("followed:\n%q\nwant\n%q", got, want)
	}
	if c.caughtUp == 0 {
		t.Error("no caught-up event while waiting for live output")
	}
	if final.CurrentStep != nil {
		t.Errorf("a finished run has a current step: %+v", final.CurrentStep)
	}

	var after collector
	if err := r.StreamLogs(ctx, run.ID, runner.LogOptions{Follow: true}, after.emit); err != nil {
		t.Fatal(err)
	}
	if after.String() != want {
		t.Errorf("finished run:\n%q\nwant\n%q", after.String(), want)
	}
	for _, opts := range []runner.LogOptions{{Step: final.Result.Steps[1].ID}, {Step: "second", StepByName: true}} {
		var one collector
		if err := r.StreamLogs(ctx, run.ID, opts, one.emit); err != nil {
			t.Fatal(err)
		}
		if one.String() != "==> second\nsecond step\n" {
			t.Errorf("%+v: %q", opts, one.String())
		}
	}
	var resumed collector
	if err := r.StreamLogs(ctx, run.ID, runner.LogOptions{From: runner.CursorAt(runner.LogPosition{Step: 0, Offset: int64(len("backlog 1\nbacklog 2\n"))})}, resumed.emit); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resumed.String(), "live 1\n") {
		t.Errorf("resumed: %q", resumed.String())
	}
}

// TestFollowQueuedRunWaitsForStart: following a queued run waits for it
// to start; the stream of a run cancelled while queued just ends.
func TestFollowQueuedRunWaitsForStart(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if envOf(st.Env, "KOD_BRANCH") == "first" {
			select {
			case <-block:
			case <-ctx.Done():
			}
		}
		fmt.Fprintf(out, "%s on %s\n", st.Name, envOf(st.Env, "KOD_BRANCH"))
		return 0
	}
	r, _, _, done := fakeRunner(t, runner.Config{MaxConcurrent: 1}, staticSource{twoSteps}, play)
	enqueue(t, r, "first")
	second := enqueue(t, r, "second")
	third := enqueue(t, r, "third")
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var c, cancelled collector
	followed := make(chan error, 2)
	go func() {
		followed <- r.StreamLogs(ctx, second.ID, runner.LogOptions{Follow: true, Idle: time.Hour}, c.emit)
	}()
	go func() { followed <- r.StreamLogs(ctx, third.ID, runner.LogOptions{Follow: true}, cancelled.emit) }()
	time.Sleep(100 * time.Millisecond)
	if err := r.Cancel(ctx, third.ID); err != nil {
		t.Fatal(err)
	}
	close(block)
	for range 3 {
		wait(t, done)
	}
	for range 2 {
		if err := <-followed; err != nil {
			t.Fatal(err)
		}
	}
	if want := "==> first\nfirst on second\n==> second\nsecond on second\n"; c.String() != want {
		t.Errorf("queued then run:\n%q\nwant %q", c.String(), want)
	}
	if cancelled.String() != "" {
		t.Errorf("cancelled while queued: %q", cancelled.String())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // catches hangs only
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSupersedeQueuedPushRuns(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			t.Parallel()
			block := make(chan struct{})
			play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
				select {
				case <-block:
				case <-ctx.Done():
				}
				return 0
			}
			r, store, _, done := fakeRunner(t, runner.Config{MaxConcurrent: 1, KeepSuperseded: keep}, staticSource{twoSteps}, play)
			ctx := context.Background()
			if err := r.Start(ctx); err != nil {
				t.Fatal(err)
			}
			push := func(branch, commit string) *forge.Run {
				runs, msgs := r.OnPush(ctx, "repo", "tok", []forge.RefUpdate{{Old: strings.Repeat("0", 40), New: commit, Ref: "refs/heads/" + branch}})
				if len(runs) != 1 {
					t.Fatalf("push queued %d runs: %v", len(runs), msgs)
				}
				return runs[0]
			}
			running := push("main", strings.Repeat("1", 40))
			waitUntil(t, func() bool { s, _ := store.GetRun(ctx, running.ID); return s.Status == forge.RunRunning })
			older := push("main", strings.Repeat("2", 40))
			other := push("dev", strings.Repeat("3", 40))
			newest := push("main", strings.Repeat("4", 40))
			if !keep {
				got := wait(t, done)
				if got.ID != older.ID || got.Status != forge.RunCancelled || got.Error != "superseded by run "+newest.ID {
					t.Errorf("older queued run: %s %s %q", got.ID, got.Status, got.Error)
				}
			}
			close(block)
			seen := map[string]forge.RunStatus{}
			n := 3
			if keep {
				n = 4
			}
			for range n {
				got := wait(t, done)
				seen[got.ID] = got.Status
			}
			for _, id := range []string{running.ID, other.ID, newest.ID} {
				if seen[id] != forge.RunCompleted {
					t.Errorf("run %s: %s, want completed (running runs and other branches are left alone)", id, seen[id])
				}
			}
			if keep && seen[older.ID] != forge.RunCompleted {
				t.Errorf("with KeepSuperseded the older run must run: %s", seen[older.ID])
			}
		})
	}
}
