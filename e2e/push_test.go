package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

const ciTOML = `# the documented format
timeout = 120
[env]
GREETING = "hello from kod"

[[steps]]
name = "build"
run = """
echo "$GREETING"
echo "host=$(hostname)"
echo "repo=$KOD_REPO branch=$KOD_BRANCH ci=$CI"
echo artifact-content > artifact-of-build.txt
ls
"""

[[steps]]
name = "test"
run = """
echo "host=$(hostname)"
cat artifact-of-build.txt
echo to-stderr >&2
echo after-stderr
"""
`

// TestPushRunsStepsInContainers is the main job end to end: create a
// repository over REST, push a project with the git client over HTTP, and
// watch the run execute each step in its own container.
func TestPushRunsStepsInContainers(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("app")
	p := newProject(t, "main", map[string]string{
		".kod/workflows/ci.toml": ciTOML,
		"README.md":              "# app\n",
	})
	out := p.git("push", s.gitURL("app", adminToken), "main")
	if !strings.Contains(out, "queued workflow run") {
		t.Errorf("push output does not announce the run:\n%s", out)
	}

	// The run is recorded before the push returns.
	runs := s.runs("app")
	if len(runs) != 1 {
		t.Fatalf("want 1 run recorded when the push returns, got %d", len(runs))
	}
	head := strings.TrimSpace(p.git("rev-parse", "HEAD"))
	if runs[0].Commit != head || runs[0].Branch != "main" || runs[0].Trigger != forge.TriggerPush {
		t.Errorf("run = %+v, want commit %s on main by push", runs[0], head)
	}

	run := s.waitRun("app", runs[0].ID, 2*time.Minute)
	if run.Status != forge.RunCompleted || !run.Result.Success {
		t.Fatalf("run ended %s: %+v\n%s", run.Status, run, s.logs("app", run.ID))
	}
	steps := run.Result.Steps
	if len(steps) != 2 {
		t.Fatalf("want 2 steps, got %+v", steps)
	}
	build, test := steps[0].Output, steps[1].Output
	if !strings.Contains(build, "hello from kod") || !strings.Contains(build, "repo=app branch=main ci=true") {
		t.Errorf("build output misses env: %q", build)
	}
	if !strings.Contains(build, "README.md") {
		t.Errorf("workspace does not hold the pushed tree: %q", build)
	}
	// Each step ran in a container of its own: container hostnames, not ours.
	h1, h2 := field(build, "host="), field(test, "host=")
	hostName, _ := os.Hostname()
	if h1 == "" || h2 == "" || h1 == h2 || h1 == hostName || h2 == hostName {
		t.Errorf("step hostnames %q and %q should be two container names, not %q", h1, h2, hostName)
	}
	// The file of step 1 is in the workspace of step 2 ...
	if !strings.Contains(test, "artifact-content") {
		t.Errorf("step 2 does not see the file step 1 wrote: %q", test)
	}
	// ... with stdout and stderr in the order written ...
	if !strings.Contains(test, "artifact-content\nto-stderr\nafter-stderr\n") {
		t.Errorf("output out of order: %q", test)
	}
	// ... and nowhere on the host: not in the server's dirs, nor the checkout.
	for _, dir := range []string{s.Home, p.Dir} {
		if found := findFile(t, dir, "artifact-of-build.txt"); found != "" {
			t.Errorf("step output file leaked to the host at %s", found)
		}
	}
	// The full log is served and the step durations are set.
	logs := s.logs("app", run.ID)
	if !strings.Contains(logs, "==> build") || !strings.Contains(logs, "==> test") || !strings.Contains(logs, "after-stderr") {
		t.Errorf("logs endpoint:\n%s", logs)
	}
	if run.StartedAt == 0 || run.CompletedAt < run.StartedAt || run.Result.Duration <= 0 {
		t.Errorf("times: %+v", run)
	}
	assertNoLeftovers(t, s)
}

// TestFailingStepStopsRun: a failing step fails the run and later steps do
// not run; continue_on_error records a failure and goes on.
func TestFailingStepStopsRun(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("fails")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "allowed to fail"
continue_on_error = true
run = "echo trying; exit 3"

[[steps]]
name = "breaks"
run = "echo before; false; echo never-printed"

[[steps]]
name = "never runs"
run = "echo should-not-run"
`})
	p.git("push", "-q", s.gitURL("fails", adminToken), "main")
	runs := s.runs("fails")
	if len(runs) != 1 {
		t.Fatalf("runs: %+v", runs)
	}
	run := s.waitRun("fails", runs[0].ID, 2*time.Minute)
	if run.Status != forge.RunFailed || run.Result.Success {
		t.Fatalf("status %s, want failed", run.Status)
	}
	steps := run.Result.Steps
	if len(steps) != 3 || steps[2].Status != forge.StepSkipped || steps[2].StartedAt != 0 || steps[2].Error != "needs 'breaks', which failed" {
		t.Fatalf("want the two steps that ran and the third listed skipped, got %+v", steps)
	}
	if steps[0].Success || !strings.Contains(steps[0].Error, "exit code 3") {
		t.Errorf("continue_on_error step: %+v", steps[0])
	}
	if steps[1].Success || strings.Contains(steps[1].Output, "never-printed") || !strings.Contains(steps[1].Output, "before") {
		t.Errorf("failing step (sh -e must stop at false): %+v", steps[1])
	}
	assertNoLeftovers(t, s)
}

// TestStepTimeout: a step with timeout = 2 running sleep 600 is stopped
// (it never sleeps its 600 s), fails with an error saying it timed out, keeps
// the output it wrote before, and the steps after it do not run.
func TestStepTimeout(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("slow")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "sleeps"
timeout = 2
run = "echo going to sleep; sleep 600"

[[steps]]
name = "after"
run = "echo should-not-run"
`})
	p.git("push", "-q", s.gitURL("slow", adminToken), "main")
	runs := s.runs("slow")
	if len(runs) != 1 {
		t.Fatalf("runs: %+v", runs)
	}
	run := s.waitRun("slow", runs[0].ID, 5*time.Minute)
	if run.Status != forge.RunFailed {
		t.Fatalf("status %s, want failed", run.Status)
	}
	st := run.Result.Steps
	if len(st) != 2 || st[0].Success || !strings.Contains(st[0].Error, "timed out after 2 s") || st[1].Status != forge.StepSkipped || st[1].StartedAt != 0 {
		t.Fatalf("steps: %+v", st)
	}
	// At least the timeout; far less than the sleep (how much less is the
	// engine's speed, not kod's behaviour).
	if d := time.Duration(st[0].Duration) * time.Millisecond; d < 2*time.Second || d > 5*time.Minute {
		t.Errorf("timed-out step took %s, want between its 2 s timeout and well under its 600 s sleep", d)
	}
	if !strings.Contains(st[0].Output, "going to sleep") {
		t.Errorf("output of a timed-out step lost: %q", st[0].Output)
	}
	assertNoLeftovers(t, s)
}

// TestManualTriggerAndLegacySyntax: POST /repos/:name/workflows runs the
// branch head; a workflow in Kod's line syntax runs with interpolation, env
// directives and if conditions.
func TestManualTriggerAndLegacySyntax(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("legacy")
	p := newProject(t, "main", map[string]string{"README.md": "no workflows yet\n"})
	p.git("push", "-q", s.gitURL("legacy", adminToken), "main")
	if runs := s.runs("legacy"); len(runs) != 0 {
		t.Fatalf("a push without workflow files queued %d runs", len(runs))
	}
	// Manual trigger on a branch without workflows: the run fails and says why.
	var queued struct{ ID, Status string }
	s.mustDo("POST", "/repos/legacy/workflows", adminToken, map[string]string{"branch": "main"}, http.StatusAccepted, &queued)
	run := s.waitRun("legacy", queued.ID, time.Minute)
	if run.Status != forge.RunFailed || !strings.Contains(run.Error, "no workflow files") {
		t.Errorf("run without workflows: %s %q", run.Status, run.Error)
	}

	p.git("checkout", "-q", "-b", "feature")
	p.commit("legacy workflow", map[string]string{".kod/workflows/legacy.toml": `# Kod line syntax
timeout: 60

[step:Say hello]
run: echo "building {repo} on {branch}"

[step:Set version]
run:
  env.VERSION = "1.2.{branch}"
  echo "version is {env.VERSION}" # inline comment

[step:Only on main]
if: branch == 'main'
run: echo should-be-skipped

[step:Uses exported]
if: env.VERSION != 'x'
run: echo "exported=$VERSION"
`})
	p.git("push", "-q", s.gitURL("legacy", adminToken), "feature")
	// The push queued one run; a manual trigger of the same branch another.
	s.mustDo("POST", "/repos/legacy/workflows", adminToken, map[string]any{"branch": "feature", "files": []string{".kod/workflows/legacy.toml"}}, http.StatusAccepted, &queued)
	if queued.Status != "queued" || queued.ID == "" {
		t.Fatalf("trigger answer: %+v", queued)
	}
	runs := s.runs("legacy")
	if len(runs) != 3 {
		t.Fatalf("want 3 runs, got %d", len(runs))
	}
	for _, r := range runs[:2] {
		run := s.waitRun("legacy", r.ID, 2*time.Minute)
		if run.Status != forge.RunCompleted {
			t.Fatalf("legacy run %s: %s %q %+v", r.Trigger, run.Status, run.Error, run.Result)
		}
		st := run.Result.Steps
		if len(st) != 4 {
			t.Fatalf("steps: %+v", st)
		}
		checks := []struct{ got, want string }{
			{st[0].Output, "building legacy on feature\n"},
			{st[1].Output, "version is 1.2.feature\n"},
			{st[3].Output, "exported=1.2.feature\n"},
		}
		for _, c := range checks {
			if c.got != c.want {
				t.Errorf("output %q, want %q", c.got, c.want)
			}
		}
		if !st[2].Skipped || !st[2].Success {
			t.Errorf("if: branch == 'main' on feature should skip: %+v", st[2])
		}
	}
	var manual forge.Run
	s.mustDo("GET", "/repos/legacy/workflows/"+queued.ID, adminToken, nil, http.StatusOK, &manual)
	if manual.Trigger != forge.TriggerManual {
		t.Errorf("trigger = %q", manual.Trigger)
	}
	assertNoLeftovers(t, s)
}

// field returns the rest of the line that starts with prefix in out.
func field(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}

func findFile(t *testing.T, root, name string) string {
	var found string
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			found = path
		}
		return nil
	})
	return found
}

// assertNoLeftovers checks that no container, volume or network of the
// server's runs remains.
func assertNoLeftovers(t *testing.T, s *server) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute) // catches hangs only
	for {
		left := dockertest.Leftovers(t, s.Instance)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("objects left behind: %v", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
