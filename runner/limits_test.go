package runner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
)

// stepsWorkflow is a TOML workflow of n steps named <prefix>0.. .
func stepsWorkflow(prefix string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[[steps]]\nname = \"%s%d\"\nrun = \"true\"\n", prefix, i)
	}
	return b.String()
}

// errFilesSource is filesSource plus files that could not be read.
type errFilesSource struct {
	filesSource
	broken map[string]error
}

func (s errFilesSource) WorkflowFiles(ctx context.Context, repo, commit string) ([]runner.File, error) {
	files, _ := s.filesSource.WorkflowFiles(ctx, repo, commit)
	for p, err := range s.broken {
		files = append(files, runner.File{Path: p, Err: err})
	}
	return files, nil
}

// TestRunOutputBudget: 40 steps printing 64 KiB each keep 64 KiB tails
// while the run's 1 MiB budget lasts, then 4 KiB tails with a note pointing
// at the logs; the log files keep everything.
func TestRunOutputBudget(t *testing.T) {
	t.Parallel()
	const steps, printed = 40, 64 << 10
	play := func(_ context.Context, st *sandbox.StepSpec, out io.Writer) int {
		line := fmt.Sprintf("%-63s\n", st.Name)
		io.WriteString(out, strings.Repeat(line, printed/64))
		return 0
	}
	logs := t.TempDir()
	r, _, _, done := fakeRunner(t, runner.Config{LogsDir: logs}, staticSource{stepsWorkflow("s", steps)}, play)
	run := enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	final := wait(t, done)
	if final.Status != forge.RunCompleted || len(final.Result.Steps) != steps {
		t.Fatalf("%s %q, %d steps", final.Status, final.Error, len(final.Result.Steps))
	}
	total := 0
	for i, s := range final.Result.Steps {
		total += len(s.Output)
		full := i < runner.DefaultOutputBudget/printed
		switch {
		case full && len(s.Output) != printed:
			t.Errorf("step %d keeps %d bytes, want all %d while the budget lasts", i, len(s.Output), printed)
		case !full && (len(s.Output) > runner.ShortOutput+300 || !strings.HasPrefix(s.Output, "[... ") ||
			!strings.Contains(s.Output, "the full log is at /logs") || !strings.HasSuffix(s.Output, fmt.Sprintf("%-63s\n", s.Name))):
			t.Errorf("step %d after the budget: %d bytes: %.300q", i, len(s.Output), s.Output)
		}
		if st, err := os.Stat(runner.StepLogPath(logs, run.ID, i)); err != nil || st.Size() != printed {
			t.Errorf("log of step %d: %v, %v bytes", i, err, st)
		}
	}
	if max := runner.DefaultOutputBudget + (steps-16)*(runner.ShortOutput+300); total > max {
		t.Errorf("the record keeps %d bytes of output, want at most %d", total, max)
	}
}

// TestRunStepCap: a run of more than MaxRunSteps steps over several files
// fails before any step starts, saying why; the push warns.
func TestRunStepCap(t *testing.T) {
	t.Parallel()
	src := filesSource{
		".kod/workflows/a.toml": stepsWorkflow("a", 100),
		".kod/workflows/b.toml": stepsWorkflow("b", 100),
		".kod/workflows/c.toml": stepsWorkflow("c", 1),
	}
	r, _, fake, done := fakeRunner(t, runner.Config{}, src, nil)
	ctx := context.Background()
	_, msgs := r.OnPush(ctx, "repo", "tok", []forge.RefUpdate{{Old: strings.Repeat("0", 40), New: strings.Repeat("a", 40), Ref: "refs/heads/main"}})
	if !strings.Contains(strings.Join(msgs, "\n"), "kod: warning: the workflows for main have 201 steps; a run may have at most 200 (the run will fail)") {
		t.Errorf("push messages: %q", msgs)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	final := wait(t, done)
	if final.Status != forge.RunFailed || final.Error != "the run has 201 steps in 3 workflow files; a run may have at most 200" || len(fake.Started()) != 0 {
		t.Errorf("%s %q, %d steps started", final.Status, final.Error, len(fake.Started()))
	}
}

// TestUnreadableWorkflowFile: a file the source could not read (too large)
// fails the runs that include it, naming it, and warns the pusher; the
// other files still run.
func TestUnreadableWorkflowFile(t *testing.T) {
	t.Parallel()
	src := errFilesSource{
		filesSource: filesSource{".kod/workflows/ci.toml": twoSteps},
		broken:      map[string]error{".kod/workflows/big.toml": errors.New("file is 2097152 bytes; a workflow file may be at most 1048576")},
	}
	r, _, fake, done := fakeRunner(t, runner.Config{MaxConcurrent: 1}, src, nil)
	ctx := context.Background()
	runs, msgs := r.OnPush(ctx, "repo", "tok", []forge.RefUpdate{{Old: strings.Repeat("0", 40), New: strings.Repeat("a", 40), Ref: "refs/heads/main"}})
	want := "kod: warning: .kod/workflows/big.toml: file is 2097152 bytes; a workflow file may be at most 1048576 (the run will fail)"
	if len(runs) != 1 || !strings.Contains(strings.Join(msgs, "\n"), want) {
		t.Fatalf("%d runs, messages %q", len(runs), msgs)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if final := wait(t, done); final.Status != forge.RunFailed || !strings.Contains(final.Error, ".kod/workflows/big.toml: file is 2097152 bytes") {
		t.Errorf("push run: %s %q", final.Status, final.Error)
	}
	other, err := r.Enqueue(ctx, runner.Request{Repo: "repo", Branch: "main", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual, Files: []string{".kod/workflows/ci.toml"}})
	if err != nil {
		t.Fatal(err)
	}
	if final := wait(t, done); final.ID != other.ID || final.Status != forge.RunCompleted || len(fake.Started()) != 2 {
		t.Errorf("run of the other file: %s %q", final.Status, final.Error)
	}
}

// TestPushWithTooManyWorkflowFiles: more than MaxRunFiles files for one
// push queue nothing and say why.
func TestPushWithTooManyWorkflowFiles(t *testing.T) {
	t.Parallel()
	src := filesSource{}
	for i := range runner.MaxRunFiles + 1 {
		src[fmt.Sprintf(".kod/workflows/w%03d.toml", i)] = stepsWorkflow("s", 1)
	}
	r, store, _, _ := fakeRunner(t, runner.Config{}, src, nil)
	runs, msgs := r.OnPush(context.Background(), "repo", "tok", []forge.RefUpdate{{Old: strings.Repeat("0", 40), New: strings.Repeat("a", 40), Ref: "refs/heads/main"}})
	if len(runs) != 0 || strings.Join(msgs, "\n") != "kod: 101 workflow files apply to a push of main; a run may have at most 100: no run queued" {
		t.Errorf("%d runs, messages %q", len(runs), msgs)
	}
	if queued, _ := store.QueuedRuns(context.Background()); len(queued) != 0 {
		t.Errorf("%d runs queued", len(queued))
	}
}

// TestScheduleSurvivesAnUnreadableFile: a file that cannot be read does not
// take the schedules of the other files with it.
func TestScheduleSurvivesAnUnreadableFile(t *testing.T) {
	t.Parallel()
	src := &brokenHeadSource{headSource: headSource{workflow: map[string]string{}}}
	src.set(strings.Repeat("1", 40), "[on]\nschedule = [\"@every 1s\"]\n[[steps]]\nname = \"nightly\"\nrun = \"true\"\n")
	r, _, _, done := fakeRunner(t, runner.Config{ScheduleEvery: time.Hour}, src, nil)
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if run := wait(t, done); run.Trigger != forge.TriggerSchedule || run.Files[0] != ".kod/workflows/nightly.toml" {
		t.Errorf("run: %+v", run)
	}
}

// brokenHeadSource is headSource with one more file that cannot be read.
type brokenHeadSource struct{ headSource }

func (s *brokenHeadSource) WorkflowFiles(ctx context.Context, repo, commit string) ([]runner.File, error) {
	files, err := s.headSource.WorkflowFiles(ctx, repo, commit)
	return append([]runner.File{{Path: ".kod/workflows/big.toml", Err: errors.New("file is too large")}}, files...), err
}
