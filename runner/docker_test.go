package runner_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// filesSource serves workflow files (path -> content) for any commit and a
// one-file tree.
type filesSource map[string]string

func (s filesSource) WorkflowFiles(context.Context, string, string) ([]runner.File, error) {
	var files []runner.File
	for p, data := range s {
		files = append(files, runner.File{Path: p, Data: []byte(data)})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

func (s filesSource) Archive(ctx context.Context, repo, commit string, w io.Writer) error {
	return staticSource{}.Archive(ctx, repo, commit, w)
}

// engineRunner starts a runner on the real engine with cfg (Instance,
// DefaultImage and LogsDir are filled in) over a temporary bbolt store.
func engineRunner(tb testing.TB, cfg runner.Config, src runner.Source) (*runner.Runner, *boltstore.Store, string, <-chan *forge.Run) {
	tb.Helper()
	return engineRunnerAt(tb, "", cfg, src)
}

// engineRunnerAt is engineRunner with the backend talking to the engine at
// host ("" = the environment's), e.g. a dockertest.Proxy.
func engineRunnerAt(tb testing.TB, host string, cfg runner.Config, src runner.Source) (*runner.Runner, *boltstore.Store, string, <-chan *forge.Run) {
	tb.Helper()
	backend := dockertest.RequireServer(tb, host)
	dir := tb.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if err := store.CreateRepo(ctx, &forge.Repo{Name: "repo"}); err != nil {
		tb.Fatal(err)
	}
	cfg.Instance = dockertest.NewID(tb)
	cfg.DefaultImage = dockertest.Image
	cfg.Pull = sandbox.PullNever
	cfg.LogsDir = filepath.Join(dir, "logs")
	done := make(chan *forge.Run, 16)
	cfg.OnRunDone = func(_ context.Context, run *forge.Run) { done <- run }
	r := runner.New(cfg, store, backend, src, slog.New(slog.DiscardHandler))
	if err := r.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		_ = r.Shutdown(context.Background())
		dockertest.Clean(tb, backend, cfg.Instance)
	})
	return r, store, cfg.Instance, done
}

func runFile(t testing.TB, r *runner.Runner, file string) {
	t.Helper()
	_, err := r.Enqueue(context.Background(), runner.Request{Repo: "repo", Branch: "main", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual, Files: []string{file}})
	if err != nil {
		t.Fatal(err)
	}
}

func waitClean(t *testing.T, instance string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for left := dockertest.Leftovers(t, instance); len(left) > 0; left = dockertest.Leftovers(t, instance) {
		if time.Now().After(deadline) {
			t.Fatalf("left behind: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestStepLimitsOnDocker: a step allocating far beyond its memory limit
// fails with an out-of-memory error; a fork bomb hits the PIDs limit and
// fails its step; neither leaves anything behind, and the next run works.
func TestStepLimitsOnDocker(t *testing.T) {
	t.Parallel()
	src := filesSource{
		".kod/workflows/oom.toml": `
[[steps]]
name = "hog"
run = "echo allocating; dd if=/dev/zero of=/dev/null bs=512M count=1"
[[steps]]
name = "never"
run = "echo should not run"
`,
		".kod/workflows/bomb.toml": `
[[steps]]
name = "bomb"
timeout = 30
run = """
bomb() { bomb | bomb; }
bomb
echo the bomb did not hit the limit
"""
`,
		".kod/workflows/ok.toml": "[[steps]]\nname = \"fine\"\nrun = \"echo still works\"\n",
	}
	cfg := runner.Config{MaxConcurrent: 1, Limits: sandbox.Limits{MemoryBytes: 64 << 20, NanoCPUs: 1e9, PIDs: 64}}
	r, _, instance, done := engineRunner(t, cfg, src)

	runFile(t, r, ".kod/workflows/oom.toml")
	run := wait(t, done)
	if run.Status != forge.RunFailed || len(ran(run.Result.Steps)) != 1 {
		t.Fatalf("memory hog: %s %+v", run.Status, run.Result)
	}
	if st := run.Result.Steps[0]; !strings.Contains(st.Error, "out of memory (limit 64 MiB)") || !strings.Contains(st.Output, "allocating") {
		t.Errorf("memory hog step: error %q output %q", st.Error, st.Output)
	}
	waitClean(t, instance)

	runFile(t, r, ".kod/workflows/bomb.toml")
	start := time.Now()
	run = waitLong(t, done, 3*time.Minute)
	st := run.Result.Steps[0]
	if run.Status != forge.RunFailed || st.Success || strings.Contains(st.Output, "did not hit the limit") {
		t.Errorf("fork bomb: %s %+v", run.Status, st)
	}
	if !strings.Contains(st.Output, "can't fork") {
		t.Errorf("fork bomb output should show fork failures: %q", st.Output)
	}
	t.Logf("fork bomb stopped after %s: %s", time.Since(start).Round(time.Millisecond), st.Error)
	waitClean(t, instance)

	runFile(t, r, ".kod/workflows/ok.toml")
	run = wait(t, done)
	if run.Status != forge.RunCompleted || run.Result.Steps[0].Output != "still works\n" {
		t.Errorf("run after the limits: %s %+v", run.Status, run.Result)
	}
	waitClean(t, instance)
}

func waitLong(t *testing.T, done <-chan *forge.Run, d time.Duration) *forge.Run {
	t.Helper()
	select {
	case run := <-done:
		return run
	case <-time.After(d):
		t.Fatalf("no run finished within %s", d)
		return nil
	}
}
