package cli

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

// TestShowListsEveryPlannedStep: `kod workflow show` of a running parallel
// run lists every planned step with its status (running, pending, skipped
// with its reason, not run), and the summary counts them.
func TestShowListsEveryPlannedStep(t *testing.T) {
	now := time.Now()
	ms := func(d time.Duration) forge.Millis { return forge.Millis(now.Add(d).UnixMilli()) }
	run := &client.Run{ID: "run000000003", RepoName: "app", Branch: "main", Status: forge.RunRunning, CreatedAt: ms(-time.Minute), StartedAt: ms(-time.Minute),
		Result: &forge.Result{Steps: []forge.StepResult{
			{ID: "ci.build", Name: "build", Workflow: ".kod/workflows/ci.toml", Status: forge.StepCompleted, Success: true, StartedAt: ms(-50 * time.Second), CompletedAt: ms(-40 * time.Second), Duration: 10000},
			{ID: "ci.unit", Name: "unit", Workflow: ".kod/workflows/ci.toml", Status: forge.StepRunning, StartedAt: ms(-30 * time.Second)},
			{ID: "ci.lint", Name: "lint", Workflow: ".kod/workflows/ci.toml", Status: forge.StepFailed, StartedAt: ms(-30 * time.Second), CompletedAt: ms(-20 * time.Second), Duration: 10000, Error: "step failed with exit code 1"},
			{ID: "ci.package", Name: "package", Workflow: ".kod/workflows/ci.toml", Status: forge.StepSkipped, Success: true, Skipped: true, Error: "needs 'lint', which failed"},
			{ID: "b.test", Name: "test", Workflow: ".kod/workflows/b.toml", Status: forge.StepPending},
			{ID: "b.docs", Name: "docs", Workflow: ".kod/workflows/b.toml", Status: forge.StepCancelled, Error: "the run was cancelled"},
		}}}
	var out bytes.Buffer
	u := &ui{out: &out, errOut: &out, now: now}
	printRun(u, run)
	got := out.String()
	for _, want := range []string{
		`\nbuild +\.kod/workflows/ci\.toml +passed +10\.0s`,
		`\nunit +\.kod/workflows/ci\.toml +running +3\d\.\ds…`,
		`\nlint +\.kod/workflows/ci\.toml +failed +10\.0s +step failed with exit code 1`,
		`\npackage +\.kod/workflows/ci\.toml +skipped +- +needs 'lint', which failed`,
		`\ntest +\.kod/workflows/b\.toml +pending +- +-`,
		`\ndocs +\.kod/workflows/b\.toml +not run +- +the run was cancelled`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("show lacks %s:\n%s", want, got)
		}
	}
	passed, failed, skipped, notRun := stepCounts(run.Result)
	if passed != 1 || failed != 1 || skipped != 1 || notRun != 3 {
		t.Errorf("counts %d passed %d failed %d skipped %d not run", passed, failed, skipped, notRun)
	}
	// A record from an older server: statuses from success and skipped.
	old := &forge.Result{Steps: []forge.StepResult{{Name: "a", Success: true}, {Name: "b", Success: true, Skipped: true}, {Name: "c"}}}
	if p, f, s, n := stepCounts(old); p != 1 || f != 1 || s != 1 || n != 0 {
		t.Errorf("old record counts %d %d %d %d", p, f, s, n)
	}
}

// TestShowPrintsFailedOutput: `kod workflow show` prints, after the
// table, the last 20 lines of each failed step's recorded output under a
// header naming the step and its workflow; passed steps print none.
func TestShowPrintsFailedOutput(t *testing.T) {
	var long []string
	for i := 1; i <= 25; i++ {
		long = append(long, fmt.Sprintf("line %d", i))
	}
	run := &client.Run{ID: "run000000004", RepoName: "app", Branch: "main", Status: forge.RunFailed, Error: "step test: step failed with exit code 3",
		Result: &forge.Result{Steps: []forge.StepResult{
			{Name: "build", Workflow: "ci.toml", Status: forge.StepCompleted, Success: true, Output: "built ok\n"},
			{Name: "test", Workflow: "ci.toml (OS=b)", Status: forge.StepFailed, Output: strings.Join(long, "\n") + "\n", Error: "step failed with exit code 3"},
			{Name: "lint", Workflow: "ci.toml", Status: forge.StepFailed, Output: "token ***\nbad style", Error: "step failed with exit code 1"},
		}}}
	var out bytes.Buffer
	printRun(&ui{out: &out, errOut: &out, now: time.Now()}, run)
	got := out.String()
	want := "\n==> test (ci.toml (OS=b)), last 20 lines\nline 6\n"
	if !strings.Contains(got, want) || !strings.Contains(got, "line 25\n") || strings.Contains(got, "line 5\n") {
		t.Errorf("show lacks the failed step's last 20 lines %q:\n%s", want, got)
	}
	if !strings.Contains(got, "\n==> lint (ci.toml)\ntoken ***\nbad style\n") || strings.Contains(got, "built ok") {
		t.Errorf("show prints other output than the failed steps':\n%s", got)
	}
	if strings.Index(got, "==> test") < strings.Index(got, "STEP ") {
		t.Errorf("the output comes before the table:\n%s", got)
	}
}

// TestFollowPaintsStepPrefixes: with colour, the "[name] " prefixes of
// interleaved steps keep one colour per step; the text is unchanged.
func TestFollowPaintsStepPrefixes(t *testing.T) {
	var out bytes.Buffer
	lw := newLogWriter(&ui{out: &out, color: true}, &out)
	if _, err := lw.Write([]byte("==> unit\n==> lint\n[unit] ok 1\n[lint] ok 2\n[unit] ok 3\nplain [x] line\n")); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	unit := "\x1b[" + prefixColor("unit") + "m[unit]\x1b[0m"
	if strings.Count(got, unit+" ok") != 2 || !strings.Contains(got, "m[lint]\x1b[0m ok 2\n") || !strings.Contains(got, "\nplain [x] line\n") {
		t.Errorf("painted log:\n%q", got)
	}
}
