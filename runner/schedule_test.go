package runner_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// headSource is a Source whose default branch ("main") can move to a
// commit with other workflow files; it implements runner.Heads.
type headSource struct {
	mu       sync.Mutex
	commit   string
	workflow map[string]string // commit -> workflow file content
}

func (s *headSource) set(commit, workflow string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commit = commit
	s.workflow[commit] = workflow
}

func (s *headSource) WorkflowFiles(_ context.Context, _, commit string) ([]runner.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []runner.File{{Path: ".kod/workflows/nightly.toml", Data: []byte(s.workflow[commit])}}, nil
}

func (s *headSource) Archive(ctx context.Context, repo, commit string, w io.Writer) error {
	return staticSource{}.Archive(ctx, repo, commit, w)
}

func (s *headSource) DefaultBranch(context.Context, string) (string, string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "main", s.commit, s.commit != "", nil
}

var _ runner.Heads = (*headSource)(nil)

// TestScheduledRuns: `[on] schedule` queues runs with trigger schedule on
// the default branch head; a push that removes the schedule stops them,
// and a deleted repository's schedules go at the next reconcile.
func TestScheduledRuns(t *testing.T) {
	t.Parallel()
	src := &headSource{workflow: map[string]string{}}
	c1, c2 := strings.Repeat("1", 40), strings.Repeat("2", 40)
	src.set(c1, "[on]\nschedule = [\"@every 1s\"]\n[[steps]]\nname = \"nightly\"\nrun = \"true\"\n")
	r, store, _, done := fakeRunner(t, runner.Config{ScheduleEvery: 200 * time.Millisecond}, src, nil)
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	if run.Trigger != forge.TriggerSchedule || run.Branch != "main" || run.Commit != c1 || run.TokenID != "" ||
		len(run.Files) != 1 || run.Files[0] != ".kod/workflows/nightly.toml" || run.Status != forge.RunCompleted {
		t.Errorf("scheduled run: %+v", run)
	}
	// A push to main removes the schedule (push = every branch still runs).
	src.set(c2, "[[steps]]\nname = \"nightly\"\nrun = \"true\"\n")
	runs, _ := r.OnPush(ctx, "repo", "tok", []forge.RefUpdate{{Old: c1, New: c2, Ref: "refs/heads/main"}})
	if len(runs) != 1 {
		t.Fatalf("push queued %d runs", len(runs))
	}
	removed := time.Now() // OnPush returned: the schedule is gone
	drain(done, 2500*time.Millisecond)
	if n := countTrigger(t, store, forge.TriggerSchedule, removed); n != 0 {
		t.Errorf("%d scheduled runs after the push that removed the schedule returned", n)
	}

	// Back on, then the repository goes: no more scheduled runs.
	c3 := strings.Repeat("3", 40)
	src.set(c3, "[on]\nschedule = [\"@every 1s\"]\n[[steps]]\nname = \"nightly\"\nrun = \"true\"\n")
	r.OnPush(ctx, "repo", "tok", []forge.RefUpdate{{Old: c2, New: c3, Ref: "refs/heads/main"}})
	if got := wait(t, done); got.Trigger != forge.TriggerSchedule {
		t.Errorf("after the schedule came back: %+v", got)
	}
	if err := store.DeleteRepo(ctx, "repo"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	drain(done, 2500*time.Millisecond) // reconciles pass; the schedule fires twice or more
	runs, err := store.RunsWithStatus(ctx, forge.RunQueued, forge.RunRunning, forge.RunCompleted)
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range runs {
		// A firing under way when the repository went may still queue a
		// run; none begins after it (fire reads the repository first).
		if run.RepoName == "repo" && forge.Millis(deleted.Add(time.Second).UnixMilli()) < run.CreatedAt {
			t.Errorf("scheduled run %s queued for a deleted repository", run.ID)
		}
	}
}

// drain discards finished runs for d.
func drain(done <-chan *forge.Run, d time.Duration) {
	deadline := time.After(d)
	for {
		select {
		case <-done:
		case <-deadline:
			return
		}
	}
}

func countTrigger(t *testing.T, store interface {
	ListRuns(context.Context, string, int) ([]*forge.Run, error)
}, trig forge.Trigger, since time.Time) int {
	t.Helper()
	runs, err := store.ListRuns(context.Background(), "repo", 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range runs {
		if r.Trigger == trig && r.CreatedAt > forge.Millis(since.UnixMilli()) {
			n++
		}
	}
	return n
}

// TestRetentionKeepsLastRuns: with Retention 2, older finished runs and
// their log and artifact directories are deleted.
func TestRetentionKeepsLastRuns(t *testing.T) {
	t.Parallel()
	logs := filepath.Join(t.TempDir(), "logs")
	arts := filepath.Join(t.TempDir(), "artifacts")
	r, store, _, done := fakeRunner(t, runner.Config{Retention: 2, MaxConcurrent: 1, LogsDir: logs, ArtifactsDir: arts}, staticSource{twoSteps}, nil)
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range 4 {
		ids = append(ids, enqueue(t, r, "main").ID)
		wait(t, done)
		// What a step's artifacts leave (the run is pruned only after
		// two more runs end).
		dir := filepath.Join(arts, ids[len(ids)-1])
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "0123"), []byte("artifact"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Pruning follows the announcement: wait for it (a minute catches a
	// pruning that never comes).
	var runs []*forge.Run
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if runs, err = store.ListRuns(ctx, "repo", 0); err != nil {
			t.Fatal(err)
		}
		// A pruned run's record goes first, then its log directory.
		_, err0 := os.Stat(filepath.Join(logs, ids[0]))
		_, err1 := os.Stat(filepath.Join(arts, ids[1]))
		if len(runs) <= 2 && err0 != nil && err1 != nil || time.Now().After(deadline) {
			break
		}
	}
	if len(runs) != 2 || runs[0].ID != ids[3] || runs[1].ID != ids[2] {
		t.Fatalf("kept %d runs, want the last 2", len(runs))
	}
	for i, id := range ids {
		_, err := os.Stat(filepath.Join(logs, id))
		if exists := err == nil; exists != (i >= 2) {
			t.Errorf("log dir of run %d exists=%v", i, exists)
		}
		_, err = os.Stat(filepath.Join(arts, id))
		if exists := err == nil; exists != (i >= 2) {
			t.Errorf("artifact dir of run %d exists=%v", i, exists)
		}
	}
}
