package runner_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// TestReusableWorkflows: a workflow instance (the key its step ids start
// with) is reused when every recorded step of it succeeded (skipped steps
// count as succeeded); one failed or cancelled step makes it run again; a
// run without a result, or without step ids, reuses nothing. The reused
// steps keep their index and are marked, services' pseudo-steps are left
// out; their logs are linked.
func TestReusableWorkflows(t *testing.T) {
	prev := &forge.Run{ID: "prev", Status: forge.RunFailed, Result: &forge.Result{Steps: []forge.StepResult{
		{ID: "a.build", Name: "build", Workflow: "a.toml", Success: true},
		{ID: "b.test", Name: "test", Workflow: "b.toml", Success: false, Error: "exit 1"},
		{ID: "a.lint", Name: "lint", Workflow: "a.toml", Success: true, Skipped: true},
		{ID: "c.deploy", Name: "deploy", Workflow: "c.toml", Success: true},
		{ID: "c.after", Name: "after", Workflow: "c.toml", Success: false, Error: "cancelled"},
		{ID: "a:service-db", Name: "service: db", Workflow: "a.toml", Success: true},
	}}}
	reuse := runner.ReusableWorkflows(prev)
	if !slices.Equal(reuse, []string{"a"}) {
		t.Errorf("ReusableWorkflows = %v, want [a]", reuse)
	}
	if got := runner.ReusableWorkflows(&forge.Run{Result: &forge.Result{Steps: []forge.StepResult{{Name: "old", Success: true}}}}); got != nil {
		t.Errorf("record without step ids: %v", got)
	}
	if got := runner.ReusableWorkflows(&forge.Run{Status: forge.RunFailed, Error: "workflow does not parse"}); got != nil {
		t.Errorf("run without result: %v", got)
	}
	steps := runner.ReusedSteps(prev, reuse)
	if len(steps) != 2 || !steps[0].Reused || steps[2].Name != "lint" || !steps[2].Reused {
		t.Errorf("ReusedSteps = %+v", steps)
	}
	logs := t.TempDir()
	for _, i := range []int{0, 1, 2} {
		p := runner.StepLogPath(logs, "prev", i)
		os.MkdirAll(filepath.Dir(p), 0o700)
		os.WriteFile(p, []byte("log of step"), 0o600)
	}
	next := &forge.Run{ID: "next"}
	if err := runner.LinkReusedLogs(logs, prev, next, steps); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(logs, "prev"))
	for _, i := range []int{0, 2} {
		if b, err := os.ReadFile(runner.StepLogPath(logs, "next", i)); err != nil || string(b) != "log of step" {
			t.Errorf("linked log %d: %q %v", i, b, err)
		}
	}
	if _, err := os.Stat(runner.StepLogPath(logs, "next", 1)); err == nil {
		t.Error("the log of a step that runs again was linked")
	}
}
