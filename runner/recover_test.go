package runner_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// TestRestartRecordsInterruptedStep: a run a crash left running ends
// failed, and the step it was executing is recorded with the output its
// log file holds; log directories of runs that no longer exist go.
func TestRestartRecordsInterruptedStep(t *testing.T) {
	t.Parallel()
	logs := filepath.Join(t.TempDir(), "logs")
	r, store, _, done := fakeRunner(t, runner.Config{LogsDir: logs}, staticSource{twoSteps}, nil)
	ctx := context.Background()
	crashed := &forge.Run{
		ID: "crashed1", RepoName: "repo", Branch: "main", Status: forge.RunRunning, StartedAt: forge.NowMillis() - 5000,
		Result:      &forge.Result{Steps: []forge.StepResult{{Name: "first", Success: true}}},
		CurrentStep: &forge.CurrentStep{Index: 1, Name: "second", Workflow: ".kod/workflows/ci.toml", StartedAt: forge.NowMillis() - 2000},
	}
	if err := store.CreateRun(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	for path, content := range map[string]string{
		runner.StepLogPath(logs, "crashed1", 1): "compiling\nhalf a line",
		runner.StepLogPath(logs, "gone0run", 0): "a run deleted while its logs were kept",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	if run.Status != forge.RunFailed || !strings.Contains(run.Error, "restarted") || run.CurrentStep != nil {
		t.Fatalf("interrupted run: %s %q current %+v", run.Status, run.Error, run.CurrentStep)
	}
	steps := run.Result.Steps
	if len(steps) != 2 || steps[1].Name != "second" || steps[1].Success || steps[1].Output != "compiling\nhalf a line" ||
		!strings.Contains(steps[1].Error, "restarted while the step was running") || steps[1].Duration < 2000 {
		t.Errorf("steps: %+v", steps)
	}
	if _, err := os.Stat(filepath.Join(logs, "gone0run")); !os.IsNotExist(err) {
		t.Errorf("orphan log directory kept: %v", err)
	}
	if _, err := os.Stat(filepath.Join(logs, "crashed1")); err != nil {
		t.Errorf("logs of a kept run removed: %v", err)
	}
}

// TestPullPolicyPrecedence: a step's pull beats its workflow's, which
// beats the server's.
func TestPullPolicyPrecedence(t *testing.T) {
	t.Parallel()
	wf := "pull = \"always\"\n[[steps]]\nname = \"a\"\nrun = \"true\"\n[[steps]]\nname = \"b\"\npull = \"never\"\nrun = \"true\"\n"
	r, _, fake, done := fakeRunner(t, runner.Config{Pull: "if-not-present"}, filesSource{".kod/workflows/a.toml": wf, ".kod/workflows/b.toml": twoSteps}, nil)
	enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if run := wait(t, done); run.Status != forge.RunCompleted {
		t.Fatalf("%s %q", run.Status, run.Error)
	}
	var got []string
	for _, st := range fake.Started() {
		got = append(got, st.Name+"="+string(st.Pull))
	}
	slices.Sort(got) // the two files run at once
	if want := "a=always b=never first=if-not-present second=if-not-present"; strings.Join(got, " ") != want {
		t.Errorf("pull policies %v, want %s", got, want)
	}
}
