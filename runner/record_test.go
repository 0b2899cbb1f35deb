package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

const fourSteps = `
[[steps]]
name = "fetch"
run = "true"
[[steps]]
name = "build"
run = "true"
[[steps]]
name = "test"
run = "true"
[[steps]]
name = "install"
run = "true"
`

// statuses returns the status of every step of run, in record order.
func statuses(run *forge.Run) []forge.StepStatus {
	if run.Result == nil {
		return nil
	}
	var out []forge.StepStatus
	for _, st := range run.Result.Steps {
		out = append(out, st.Status)
	}
	return out
}

// waitRecord polls the stored run until cond holds; the deadline only
// catches hangs.
func waitRecord(t *testing.T, store *boltstore.Store, id string, cond func(*forge.Run) bool) *forge.Run {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		run, err := store.GetRun(context.Background(), id)
		if err == nil && cond(run) {
			return run
		}
		if time.Now().After(deadline) {
			t.Fatalf("the record never got there: %+v %v", run, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRecordListsEveryPlannedStep: from the moment the run starts, the
// record lists all four steps in plan order with ids and needs; statuses
// move pending -> running -> completed; currentStep names the running
// step; a failing third step leaves the fourth skipped with the reason in
// the record and in the log stream.
func TestRecordListsEveryPlannedStep(t *testing.T) {
	t.Parallel()
	fetch, build := make(chan struct{}), make(chan struct{})
	play := sandboxtest.Steps(map[string]sandboxtest.Play{
		"fetch": {Output: "fetched\n", Until: fetch},
		"build": {Output: "built\n", Until: build},
		"test":  {Output: "3 tests failed\n", Exit: 1},
	})
	r, store, _, done := fakeRunner(t, runner.Config{}, staticSource{fourSteps}, play)
	run := enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := waitRecord(t, store, run.ID, func(x *forge.Run) bool { return x.CurrentStep != nil })
	if want := []forge.StepStatus{"running", "pending", "pending", "pending"}; !slices.Equal(statuses(got), want) {
		t.Fatalf("while fetch runs: %v, want %v", statuses(got), want)
	}
	steps := got.Result.Steps
	wantIDs := []string{"ci.fetch", "ci.build", "ci.test", "ci.install"}
	for i, st := range steps {
		if st.ID != wantIDs[i] || st.Workflow != ".kod/workflows/ci.toml" {
			t.Errorf("step %d: id %q workflow %q, want %q", i, st.ID, st.Workflow, wantIDs[i])
		}
		if i > 0 && !slices.Equal(st.Needs, []string{wantIDs[i-1]}) {
			t.Errorf("step %d needs %v, want the step before it", i, st.Needs)
		}
	}
	if steps[0].StartedAt == 0 || got.CurrentStep.Index != 0 || got.CurrentStep.Name != "fetch" {
		t.Errorf("fetch running: %+v current %+v", steps[0], got.CurrentStep)
	}
	close(fetch)
	got = waitRecord(t, store, run.ID, func(x *forge.Run) bool { return x.CurrentStep != nil && x.CurrentStep.Index == 1 })
	if want := []forge.StepStatus{"completed", "running", "pending", "pending"}; !slices.Equal(statuses(got), want) {
		t.Errorf("while build runs: %v, want %v", statuses(got), want)
	}
	if st := got.Result.Steps[0]; !st.Success || st.Output != "fetched\n" || st.CompletedAt < st.StartedAt || st.ExitCode == nil || *st.ExitCode != 0 {
		t.Errorf("fetch once done: %+v", st)
	}
	close(build)
	final := wait(t, done)
	if want := []forge.StepStatus{"completed", "completed", "failed", "skipped"}; !slices.Equal(statuses(final), want) {
		t.Fatalf("final: %v, want %v", statuses(final), want)
	}
	if final.Status != forge.RunFailed || final.CurrentStep != nil || final.Error != "" {
		t.Errorf("final run: %s current %+v error %q", final.Status, final.CurrentStep, final.Error)
	}
	test, install := final.Result.Steps[2], final.Result.Steps[3]
	if test.Success || test.Error != "step failed with exit code 1" || test.ExitCode == nil || *test.ExitCode != 1 || test.Output != "3 tests failed\n" {
		t.Errorf("failed step (Kod fields as a sequential run had them): %+v", test)
	}
	if !install.Skipped || !install.Success || install.StartedAt != 0 || !strings.Contains(install.Error, "test") || install.Duration != 0 {
		t.Errorf("the step after the failure: %+v", install)
	}

	var c collector
	if err := r.StreamLogs(context.Background(), run.ID, runner.LogOptions{}, c.emit); err != nil {
		t.Fatal(err)
	}
	if want := "==> fetch\nfetched\n==> build\nbuilt\n==> test\n3 tests failed\n==> install\n"; c.String() != want {
		t.Errorf("log:\n%q\nwant\n%q", c.String(), want)
	}
	last := c.events[len(c.events)-2] // the install step's start; its end follows
	if last.Kind != runner.LogStepStarted || last.Name != "install" || !last.NotRun || !last.Skipped || last.Reason != install.Error || last.ID != "ci.install" {
		t.Errorf("install in the log stream: %+v", last)
	}
}

// TestParallelStepsInRecordAndStream: steps with `needs = []` run at once;
// the record shows both running (currentStep the later one), and a
// follower gets both steps' output, interleaved, none lost.
func TestParallelStepsInRecordAndStream(t *testing.T) {
	t.Parallel()
	const wf = `
[[steps]]
name = "unit"
needs = []
run = "true"
[[steps]]
name = "lint"
needs = []
run = "true"
[[steps]]
name = "package"
needs = ["unit", "lint"]
run = "true"
`
	release := make(chan struct{})
	var lines strings.Builder
	for i := range 50 {
		lines.WriteString("line " + string(rune('a'+i%26)) + "\n")
	}
	play := sandboxtest.Steps(map[string]sandboxtest.Play{
		"unit": {Output: "unit " + lines.String(), Until: release},
		"lint": {Output: "lint " + lines.String(), Until: release},
	})
	r, store, _, done := fakeRunner(t, runner.Config{MaxParallelSteps: 4}, staticSource{wf}, play)
	run := enqueue(t, r, "main")
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var c collector
	followed := make(chan error, 1)
	go func() {
		followed <- r.StreamLogs(ctx, run.ID, runner.LogOptions{Follow: true, Idle: 10 * time.Millisecond}, c.emit)
	}()
	got := waitRecord(t, store, run.ID, func(x *forge.Run) bool {
		return slices.Equal(statuses(x), []forge.StepStatus{"running", "running", "pending"})
	})
	latest := got.Result.Steps[0]
	if got.Result.Steps[1].StartedAt >= latest.StartedAt {
		latest = got.Result.Steps[1]
	}
	if got.CurrentStep == nil || got.CurrentStep.StartedAt != latest.StartedAt {
		t.Errorf("currentStep %+v, want the most recently started of %+v", got.CurrentStep, got.Result.Steps[:2])
	}
	if !slices.Equal(got.Result.Steps[2].Needs, []string{"ci.unit", "ci.lint"}) {
		t.Errorf("package needs %v", got.Result.Steps[2].Needs)
	}
	waitUntil(t, func() bool { return strings.Count(c.String(), "\n") >= 100 })
	close(release)
	final := wait(t, done)
	if err := <-followed; err != nil {
		t.Fatal(err)
	}
	if want := []forge.StepStatus{"completed", "completed", "completed"}; final.Status != forge.RunCompleted || !slices.Equal(statuses(final), want) {
		t.Fatalf("final %s %v", final.Status, statuses(final))
	}
	u, l := final.Result.Steps[0], final.Result.Steps[1]
	if u.StartedAt >= l.CompletedAt || l.StartedAt >= u.CompletedAt {
		t.Errorf("unit and lint did not overlap: %+v %+v", u, l)
	}
	out := c.String()
	for _, step := range []string{"unit", "lint"} {
		if n := strings.Count(out, step+" line a\n"); n != 1 {
			t.Errorf("%s's first line %d times in the stream", step, n)
		}
	}
	if n := strings.Count(out, "line "); n != 100 {
		t.Errorf("%d output lines followed, want 100:\n%s", n, out)
	}
	// Both began before either ended: the stream interleaves them.
	var order []string
	for _, ev := range c.events {
		switch ev.Kind {
		case runner.LogStepStarted:
			order = append(order, "start "+ev.Name)
		case runner.LogStepEnded:
			order = append(order, "end "+ev.Name)
		}
	}
	if len(order) != 6 || !strings.HasPrefix(order[0], "start") || !strings.HasPrefix(order[1], "start") || order[5] != "end package" {
		t.Errorf("stream order %v", order)
	}
}

// TestRestartMarksEverySteps: a run a previous process left running has
// its running steps failed (with their log's tail) and its pending steps
// cancelled; a record from before per-step state gets its current step
// appended as failed.
func TestRestartMarksEverySteps(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if err := store.CreateRepo(ctx, &forge.Repo{Name: "repo"}); err != nil {
		t.Fatal(err)
	}
	started := forge.NowMillis() - 5000
	now := &forge.Run{ID: "par1", RepoName: "repo", Branch: "main", Status: forge.RunRunning, StartedAt: started,
		CurrentStep: &forge.CurrentStep{Index: 1, Name: "lint", StartedAt: started},
		Result: &forge.Result{Steps: []forge.StepResult{
			{ID: "ci.unit", Name: "unit", Status: forge.StepRunning, StartedAt: started},
			{ID: "ci.lint", Name: "lint", Status: forge.StepRunning, StartedAt: started},
			{ID: "ci.package", Name: "package", Status: forge.StepPending, Needs: []string{"ci.unit", "ci.lint"}},
			{ID: "ci.docs", Name: "docs", Status: forge.StepCompleted, Success: true, StartedAt: started, CompletedAt: started + 10},
		}}}
	old := &forge.Run{ID: "old1", RepoName: "repo", Branch: "main", Status: forge.RunRunning, StartedAt: started,
		CurrentStep: &forge.CurrentStep{Index: 1, Name: "test", StartedAt: started},
		Result:      &forge.Result{Steps: []forge.StepResult{{Name: "build", Success: true}}}}
	for _, run := range []*forge.Run{now, old} {
		if err := store.CreateRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(filepath.Join(logs, "par1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runner.StepLogPath(logs, "par1", 0), []byte("unit output\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := sandboxtest.New(nil)
	r := runner.New(runner.Config{Instance: "test", DefaultImage: "img", LogsDir: logs}, store, fake, staticSource{fourSteps}, slog.New(slog.DiscardHandler))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(ctx) })
	got, err := store.GetRun(ctx, "par1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []forge.StepStatus{"failed", "failed", "cancelled", "completed"}; got.Status != forge.RunFailed || !slices.Equal(statuses(got), want) {
		t.Fatalf("restarted parallel run: %s %v", got.Status, statuses(got))
	}
	s := got.Result.Steps
	if s[0].Error != "the server restarted while the step was running" || s[0].Output != "unit output\n" || s[0].CompletedAt == 0 || s[0].Duration < 5000 {
		t.Errorf("running step after the restart: %+v", s[0])
	}
	if s[2].Success || s[2].StartedAt != 0 || !strings.Contains(s[2].Error, "restarted") {
		t.Errorf("pending step after the restart: %+v", s[2])
	}
	if got.CurrentStep != nil {
		t.Errorf("current step kept: %+v", got.CurrentStep)
	}
	got, err = store.GetRun(ctx, "old1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Result.Steps) != 2 || got.Result.Steps[1].Name != "test" || got.Result.Steps[1].Status != forge.StepFailed || got.Result.Steps[0].Status != forge.StepCompleted {
		t.Errorf("restarted old-style run: %+v", got.Result.Steps)
	}
}

// TestOldRecordsReadWithStatuses: a run stored before per-step state (no
// ids, no statuses) reads with statuses derived from success and skipped,
// and its logs stream as before.
func TestOldRecordsReadWithStatuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "kod.db")
	store, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.CreateRepo(ctx, &forge.Repo{Name: "repo"}); err != nil {
		t.Fatal(err)
	}
	run := &forge.Run{ID: "old2", RepoName: "repo", Branch: "main", Status: forge.RunFailed, Result: &forge.Result{}}
	if err := store.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	// Rewrite the stored record as an older kod wrote it.
	err = store.DB().Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("runs"))
		var rec map[string]any
		if err := json.Unmarshal(b.Get([]byte("old2")), &rec); err != nil {
			return err
		}
		rec["result"] = map[string]any{"success": false, "duration": 10, "steps": []map[string]any{
			{"name": "build", "success": true, "output": "ok\n", "duration": 3},
			{"name": "deploy", "success": true, "output": "", "duration": 0, "skipped": true},
			{"name": "test", "success": false, "output": "boom\n", "duration": 4, "error": "step failed with exit code 1"},
		}}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte("old2"), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.GetRun(ctx, "old2")
	if err != nil {
		t.Fatal(err)
	}
	if want := []forge.StepStatus{"completed", "skipped", "failed"}; !slices.Equal(statuses(got), want) {
		t.Errorf("old record statuses %v, want %v", statuses(got), want)
	}
	store.Close()
}

// countingStore counts the writes of one run's record.
type countingStore struct {
	*boltstore.Store
	mu     sync.Mutex
	writes map[string]int
}

func (c *countingStore) UpdateRun(ctx context.Context, id string, fn func(*forge.Run) error) (*forge.Run, error) {
	c.mu.Lock()
	c.writes[id]++
	c.mu.Unlock()
	return c.Store.UpdateRun(ctx, id, fn)
}

// TestRecordWritesCoalesce: a run of 16 steps starting at once writes its
// record far fewer than twice per step: starts close together share a
// write; every end and the final state are stored.
func TestRecordWritesCoalesce(t *testing.T) {
	t.Parallel()
	const n = 16
	var wf strings.Builder
	for i := range n {
		fmt.Fprintf(&wf, "[[steps]]\nname = \"s%d\"\nneeds = []\nrun = \"true\"\n", i)
	}
	release := make(chan struct{})
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		<-release
		return 0
	}
	dir := t.TempDir()
	bs, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	ctx := context.Background()
	if err := bs.CreateRepo(ctx, &forge.Repo{Name: "repo"}); err != nil {
		t.Fatal(err)
	}
	store := &countingStore{Store: bs, writes: map[string]int{}}
	fake := sandboxtest.New(play)
	done := make(chan *forge.Run, 1)
	r := runner.New(runner.Config{Instance: "test", DefaultImage: "img", LogsDir: filepath.Join(dir, "logs"), MaxParallelSteps: n,
		OnRunDone: func(_ context.Context, run *forge.Run) { done <- run }}, store, fake, staticSource{wf.String()}, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = r.Shutdown(ctx) })
	run := enqueue(t, r, "main")
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitRecord(t, bs, run.ID, func(x *forge.Run) bool {
		running := 0
		for _, s := range statuses(x) {
			if s == forge.StepRunning {
				running++
			}
		}
		return running == n
	})
	store.mu.Lock()
	starts := store.writes[run.ID]
	store.mu.Unlock()
	close(release)
	final := wait(t, done)
	if final.Status != forge.RunCompleted {
		t.Fatalf("run %s", final.Status)
	}
	store.mu.Lock()
	total := store.writes[run.ID]
	store.mu.Unlock()
	// Unbatched: claim + plan + n starts + n ends + final = 2n+3.
	if total >= 2*n+3 {
		t.Errorf("%d record writes for %d steps: starts were not batched", total, n)
	}
	t.Logf("record writes for %d parallel steps: %d until all ran (claim, plan, starts), %d in all (unbatched: %d)", n, starts, total, 2*n+3)
}
