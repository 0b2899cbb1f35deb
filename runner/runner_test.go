package runner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

// fakeRunner starts a runner over the fake backend and a temporary bbolt
// store. Final runs arrive on the channel.
func fakeRunner(t *testing.T, cfg runner.Config, src runner.Source, play sandboxtest.StepFunc) (*runner.Runner, *boltstore.Store, *sandboxtest.Fake, <-chan *forge.Run) {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.CreateRepo(context.Background(), &forge.Repo{Name: "repo"}); err != nil {
		t.Fatal(err)
	}
	fake := sandboxtest.New(play)
	cfg.Instance = "test"
	cfg.DefaultImage = "img"
	if cfg.MinScheduleInterval == 0 {
		cfg.MinScheduleInterval = time.Second // schedule tests fire every second; users get a minute at least
	}
	if cfg.LogsDir == "" {
		cfg.LogsDir = filepath.Join(dir, "logs")
	}
	done := make(chan *forge.Run, 64)
	cfg.OnRunDone = func(_ context.Context, run *forge.Run) { done <- run }
	r := runner.New(cfg, store, fake, src, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return r, store, fake, done
}

func enqueue(t *testing.T, r *runner.Runner, branch string) *forge.Run {
	t.Helper()
	run, err := r.Enqueue(context.Background(), runner.Request{Repo: "repo", Branch: branch, Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	return run
}

// wait returns the next run that ended; the deadline only catches hangs.
func wait(t *testing.T, done <-chan *forge.Run) *forge.Run {
	t.Helper()
	select {
	case run := <-done:
		return run
	case <-time.After(5 * time.Minute): // catches hangs only: 40 steps took over 2 minutes at load 40
		t.Fatal("no run finished within 5 minutes")
		return nil
	}
}

// ran returns the steps that started.
func ran(steps []forge.StepResult) []forge.StepResult {
	var out []forge.StepResult
	for _, st := range steps {
		if st.StartedAt != 0 {
			out = append(out, st)
		}
	}
	return out
}

// script returns the shell script of a step spec.
func script(st sandbox.StepSpec) string { return st.Command[len(st.Command)-1] }

func TestConcurrencyLimitAndBranchSerialisation(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int32
	var mu sync.Mutex
	perBranch := map[string]int{}
	overlap := false
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		branch := envOf(st.Env, "KOD_BRANCH")
		mu.Lock()
		perBranch[branch]++
		if perBranch[branch] > 1 {
			overlap = true
		}
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		perBranch[branch]--
		mu.Unlock()
		running.Add(-1)
		return 0
	}
	r, _, fake, done := fakeRunner(t, runner.Config{MaxConcurrent: 2}, staticSource{fiveTrueSteps}, play)
	var ids []string
	for i := range 6 {
		ids = append(ids, enqueue(t, r, fmt.Sprintf("b%d", i%3)).ID)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	finished := map[string]bool{}
	for range ids {
		run := wait(t, done)
		if run.Status != forge.RunCompleted {
			t.Errorf("run %s: %s %s", run.ID, run.Status, run.Error)
		}
		finished[run.ID] = true
	}
	if len(finished) != 6 {
		t.Fatalf("finished %d distinct runs", len(finished))
	}
	if p := peak.Load(); p > 2 {
		t.Errorf("%d steps ran at once with a limit of 2 runs", p)
	}
	if overlap {
		t.Error("two runs of one branch ran at the same time")
	}
	assertClean(t, fake)
}

func TestQueueIsFIFO(t *testing.T) {
	t.Parallel()
	var order []string
	var mu sync.Mutex
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		mu.Lock()
		if st.Index == 0 {
			order = append(order, envOf(st.Env, "KOD_RUN_ID"))
		}
		mu.Unlock()
		return 0
	}
	r, _, _, done := fakeRunner(t, runner.Config{MaxConcurrent: 1}, staticSource{fiveTrueSteps}, play)
	var ids []string
	for i := range 4 {
		ids = append(ids, enqueue(t, r, fmt.Sprintf("b%d", i)).ID)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range ids {
		wait(t, done)
	}
	if strings.Join(order, ",") != strings.Join(ids, ",") {
		t.Errorf("ran in order %v, queued as %v", order, ids)
	}
}

func TestCancelQueuedAndRunning(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		fmt.Fprintln(out, "step", st.Name)
		if st.Name == "1" {
			started <- struct{}{}
			<-ctx.Done() // runs until stopped
			fmt.Fprintln(out, "bye")
			return 143
		}
		return 0
	}
	r, store, fake, done := fakeRunner(t, runner.Config{MaxConcurrent: 1}, staticSource{fiveTrueSteps}, play)
	first := enqueue(t, r, "main")
	second := enqueue(t, r, "other")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx := context.Background()
	if err := r.Cancel(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	got := wait(t, done)
	if got.ID != second.ID || got.Status != forge.RunCancelled {
		t.Fatalf("queued run after cancel: %s %s", got.ID, got.Status)
	}
	if err := r.Cancel(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	got = wait(t, done)
	if got.ID != first.ID || got.Status != forge.RunCancelled {
		t.Fatalf("running run after cancel: %s %s", got.ID, got.Status)
	}
	if n := len(ran(got.Result.Steps)); n != 1 || !strings.Contains(got.Result.Steps[0].Output, "bye") {
		t.Errorf("a cancelled run must stop at its current step and keep its output: %+v", got.Result.Steps)
	}
	for _, st := range got.Result.Steps[1:] {
		if st.Status != forge.StepCancelled || st.Error != "the run was cancelled" {
			t.Errorf("a step after the cancelled one: %+v", st)
		}
	}
	if err := r.Cancel(ctx, first.ID); err == nil {
		t.Error("cancelling a finished run should be a conflict")
	}
	stored, err := store.GetRun(ctx, first.ID)
	if err != nil || stored.Status != forge.RunCancelled {
		t.Errorf("stored: %+v %v", stored, err)
	}
	assertClean(t, fake)
}

func TestStepTimeoutFailsStep(t *testing.T) {
	t.Parallel()
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if strings.Contains(script(*st), "sleep") {
			<-ctx.Done()
			return 143
		}
		return 0
	}
	wf := "[[steps]]\nname = \"slow\"\ntimeout = 1\nrun = \"sleep 60\"\n[[steps]]\nname = \"after\"\nrun = \"true\"\n"
	r, _, _, done := fakeRunner(t, runner.Config{}, staticSource{wf}, play)
	enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	if run.Status != forge.RunFailed || len(ran(run.Result.Steps)) != 1 {
		t.Fatalf("run: %s %+v", run.Status, run.Result)
	}
	if e := run.Result.Steps[0].Error; !strings.Contains(e, "step timed out after 1 s") {
		t.Errorf("error %q", e)
	}
}

// TestStepTimeoutCountsFromContainerStart: a step's timeout is the time its
// script may run; a start slower than the timeout (a loaded engine, a pull)
// neither fails the step nor loses its output.
func TestStepTimeoutCountsFromContainerStart(t *testing.T) {
	t.Parallel()
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		io.WriteString(out, "started late\n")
		return 0
	}
	wf := "[[steps]]\nname = \"late\"\ntimeout = 1\nrun = \"echo started late\"\n"
	r, _, fake, done := fakeRunner(t, runner.Config{}, staticSource{wf}, play)
	fake.StartDelay = 1500 * time.Millisecond
	enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	if run.Status != forge.RunCompleted || len(run.Result.Steps) != 1 || run.Result.Steps[0].Output != "started late\n" {
		t.Fatalf("run: %s %+v", run.Status, run.Result)
	}
}

// TestStepStartFailureInItsLog: a step that cannot start (its image cannot
// be pulled) says why in its own log, so `logs` shows it, not only the run
// record; the steps after it do not run.
func TestStepStartFailureInItsLog(t *testing.T) {
	t.Parallel()
	wf := "[[steps]]\nname = \"pull\"\nimage = \"registry.invalid/x:1\"\nrun = \"true\"\n[[steps]]\nname = \"after\"\nrun = \"true\"\n"
	logs := t.TempDir()
	r, _, fake, done := fakeRunner(t, runner.Config{LogsDir: logs}, staticSource{wf}, nil)
	fake.FailStart = func(st *sandbox.StepSpec) error {
		if st.Image == "registry.invalid/x:1" {
			return &sandbox.StepError{Msg: `image "registry.invalid/x:1" is not present and could not be pulled`}
		}
		return nil
	}
	run := enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	final := wait(t, done)
	const want = "kod: image \"registry.invalid/x:1\" is not present and could not be pulled\n"
	if final.Status != forge.RunFailed || len(ran(final.Result.Steps)) != 1 || final.Result.Steps[0].Output != want {
		t.Fatalf("run %s %+v", final.Status, final.Result)
	}
	if data, err := os.ReadFile(runner.StepLogPath(logs, run.ID, 0)); err != nil || string(data) != want {
		t.Errorf("the step's log: %q %v", data, err)
	}
}

func TestWorkflowTimeout(t *testing.T) {
	t.Parallel()
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		<-ctx.Done()
		return 143
	}
	wf := "timeout = 1\n[[steps]]\nname = \"slow\"\nrun = \"sleep 60\"\n"
	r, _, _, done := fakeRunner(t, runner.Config{}, staticSource{wf}, play)
	enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	if e := run.Result.Steps[0].Error; run.Status != forge.RunFailed || !strings.Contains(e, "workflow timed out after 1 s") {
		t.Errorf("run %s, step error %q", run.Status, e)
	}
}

func TestRestartMarksRunningFailedAndResumesQueued(t *testing.T) {
	t.Parallel()
	r, store, _, done := fakeRunner(t, runner.Config{}, staticSource{fiveTrueSteps}, nil)
	ctx := context.Background()
	interrupted := &forge.Run{ID: "interrupted1", RepoName: "repo", Branch: "x", Status: forge.RunRunning, StartedAt: forge.NowMillis()}
	if err := store.CreateRun(ctx, interrupted); err != nil {
		t.Fatal(err)
	}
	queued := enqueue(t, r, "main")
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	seen := map[string]*forge.Run{}
	for range 2 {
		run := wait(t, done)
		seen[run.ID] = run
	}
	if got := seen["interrupted1"]; got == nil || got.Status != forge.RunFailed || !strings.Contains(got.Error, "restarted") {
		t.Errorf("interrupted run: %+v", got)
	}
	if got := seen[queued.ID]; got == nil || got.Status != forge.RunCompleted {
		t.Errorf("queued run after restart: %+v", got)
	}
}

func TestInvalidWorkflowFailsRunWithFileAndLine(t *testing.T) {
	t.Parallel()
	r, _, fake, done := fakeRunner(t, runner.Config{}, staticSource{"[[steps]]\nname = \"x\"\nrun = \"true\"\nbogus = 1\n"}, nil)
	enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	if run.Status != forge.RunFailed || !strings.Contains(run.Error, ".kod/workflows/ci.toml:4") {
		t.Errorf("run %s error %q", run.Status, run.Error)
	}
	if n := len(fake.Started()); n != 0 {
		t.Errorf("%d steps started for an invalid workflow", n)
	}
}

func TestStepEnvironmentAndOutputCap(t *testing.T) {
	t.Parallel()
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		if st.Name == "loud" {
			for range 100 {
				fmt.Fprint(out, strings.Repeat("x", 99)+"\n")
			}
			fmt.Fprint(out, "the end\n")
		}
		return 0
	}
	wf := `timeout: 30
[step:export]
run:
  env.VERSION = "v-{branch}"
[step:loud]
run: echo loud
`
	r, _, fake, done := fakeRunner(t, runner.Config{OutputCap: 1000}, staticSource{wf}, play)
	enqueue(t, r, "feature")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	if run.Status != forge.RunCompleted {
		t.Fatalf("%s %s", run.Status, run.Error)
	}
	started := fake.Started()
	if got := envOf(started[1].Env, "VERSION"); got != "v-feature" {
		t.Errorf("exported VERSION in the next step = %q", got)
	}
	for _, want := range []string{"CI=true", "KOD_REPO=repo", "KOD_BRANCH=feature", "KOD_RUN_ID=" + run.ID} {
		if !contains(started[0].Env, want) {
			t.Errorf("env lacks %s: %v", want, started[0].Env)
		}
	}
	if started[0].WorkDir != sandbox.WorkspacePath || started[0].Image != "img" {
		t.Errorf("spec: %+v", started[0])
	}
	out := run.Result.Steps[1].Output
	if !strings.HasPrefix(out, "[... 9008 bytes of earlier output omitted") || !strings.HasSuffix(out, "the end\n") {
		t.Errorf("capped output: %q", out)
	}
}

func envOf(env []string, name string) string {
	v := ""
	for _, e := range env {
		if k, val, ok := strings.Cut(e, "="); ok && k == name {
			v = val
		}
	}
	return v
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// assertClean waits (a minute catches hangs) for the fake backend to hold
// no run or step: cleanup runs just after a run's final state is announced.
func assertClean(t *testing.T, fake *sandboxtest.Fake) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for left := fake.Leftovers(); len(left) != 0; left = fake.Leftovers() {
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %v", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
