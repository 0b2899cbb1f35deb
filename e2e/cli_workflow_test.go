package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

// cliWorkflows never run on push ([on] names no pushed branch): the test
// starts every run with `kod workflow trigger`.
var cliWorkflows = map[string]string{
	".kod/workflows/ci.toml": `
[on]
push = ["never"]

[[steps]]
name = "build"
run = """
echo "building $KOD_REPO on $KOD_BRANCH"
if [ "$KOD_BRANCH" = "sleepy" ]; then echo sleeping; sleep 300; fi
"""

[[steps]]
name = "test"
run = """
echo "testing"
if [ "$KOD_BRANCH" = "bad" ]; then echo "tests failed" >&2; exit 4; fi
echo "all tests passed"
"""
`,
}

// TestCLIWorkflowRemote: trigger --follow prints the live output under
// step headers and ends with the run's exit status (0 completed, 1
// failed); status, show, logs and cancel work against the real server.
func TestCLIWorkflowRemote(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	c := newCLI(t, s)
	c.ok("repo", "create", "app")
	p := newProject(t, "main", cliWorkflows)
	for _, b := range []string{"bad", "sleepy"} {
		p.git("branch", b)
	}
	p.git("push", "-q", s.gitURL("app", adminToken), "main", "bad", "sleepy")

	res := c.run("", "", "workflow", "trigger", "app", "--branch", "main", "--follow")
	if res.Code != 0 {
		t.Fatalf("trigger --follow of a passing run: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, want := range []string{"building app on main", "==> test\ntesting\nall tests passed\n", "completed in", "2 passed, 0 failed, 0 skipped"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("passing run output lacks %q:\n%s", want, res.Stdout)
		}
	}
	id := strings.Fields(strings.TrimPrefix(res.Stderr, "Queued run "))[0]

	res = c.run("", "", "workflow", "trigger", "app", "--branch", "bad", "--follow")
	if res.Code != 1 || !strings.Contains(res.Stdout, "tests failed") || !strings.Contains(res.Stdout, "step failed with exit code 4") ||
		!strings.Contains(res.Stdout, "failed in") {
		t.Errorf("trigger --follow of a failing run: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}

	var runs []client.Run
	decodeJSON(t, c.ok("workflow", "status", "app", "--json"), &runs)
	if len(runs) != 2 || runs[1].ID != id || runs[1].Status != forge.RunCompleted || runs[0].Status != forge.RunFailed {
		t.Fatalf("status app --json: %+v", runs)
	}
	var report client.StatusReport
	decodeJSON(t, c.ok("workflow", "status", "--json"), &report)
	if report.Summary["completed"] != 1 || report.Summary["failed"] != 1 || len(report.Recent) != 2 {
		t.Errorf("status --json: %+v", report)
	}
	show := c.ok("workflow", "show", "app", id)
	if !strings.Contains(show, "Status:     completed") || !strings.Contains(show, "test   .kod/workflows/ci.toml  passed") {
		t.Errorf("show:\n%s", show)
	}
	if logs := c.ok("workflow", "logs", "app", id); !strings.Contains(logs, "==> build\nbuilding app on main\n") {
		t.Errorf("logs:\n%s", logs)
	}
	c.fails("kod: Workflow run not found", "workflow", "show", "app", "nosuchrun000")

	// Cancel a running run; following it then ends with status 1.
	var queued client.Triggered
	decodeJSON(t, c.ok("workflow", "trigger", "app", "--branch", "sleepy", "--json"), &queued)
	waitLog(t, s, "app", queued.ID, "sleeping")
	c.ok("workflow", "cancel", "app", queued.ID)
	res = c.run("", "", "workflow", "show", "app", queued.ID, "--follow")
	if res.Code != 1 || !strings.Contains(res.Stdout, "sleeping") || !strings.Contains(res.Stdout, "cancelled") {
		t.Errorf("show --follow of a cancelled run: exit %d\n%s", res.Code, res.Stdout)
	}
	assertNoLeftovers(t, s)
}

// waitLog waits until the run's log contains want.
func waitLog(t *testing.T, s *server, repo, id, want string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.logs(repo, id), want) {
		if time.Now().After(deadline) {
			t.Fatalf("run %s never printed %q", id, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLIWorkflowLocal: `kod workflow FILE` runs Kod's line syntax and
// TOML locally in Docker with the server's runner, includes uncommitted
// files, exits 0 when every step passes and 1 when one fails, and leaves
// no container, volume or network behind.
func TestCLIWorkflowLocal(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	p := newProject(t, "feature", map[string]string{
		".kod/workflows/legacy.toml": `timeout: 60
[step:Install deps]
run: echo "building {repo} on {branch}"
[step:Version]
run:
  env.VERSION = "1.{branch}"   # exported to later steps
  echo "version {env.VERSION}"
[step:Deploy]
if: branch == 'main'
run: echo deploying
[step:Read]
run: cat notes.txt
`,
		".kod/workflows/ci.toml": `
[[steps]]
name = "check"
run = "test -f notes.txt && echo KOD_BRANCH=$KOD_BRANCH"
`,
		"fail.toml": `
[[steps]]
name = "breaks"
run = "echo about to fail; exit 3"

[[steps]]
name = "never"
run = "echo unreachable"
`,
	})
	writeFile(t, filepath.Join(p.Dir, "notes.txt"), "uncommitted notes\n")

	res := c.run(p.Dir, "", "workflow", ".kod/workflows/legacy.toml")
	if res.Code != 0 {
		t.Fatalf("legacy syntax: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	repo := filepath.Base(p.Dir)
	for _, want := range []string{"==> Install deps\nbuilding " + repo + " on feature\n", "version 1.feature", "uncommitted notes",
		"3 passed, 0 failed, 1 skipped"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("legacy output lacks %q:\n%s", want, res.Stdout)
		}
	}

	if !regexp.MustCompile(`\nDeploy +\.kod/workflows/legacy\.toml +skipped`).MatchString(res.Stdout) {
		t.Errorf("the skipped step is not in the summary:\n%s", res.Stdout)
	}

	c.env["BRANCH"] = "release"
	res = c.run(p.Dir, "", "workflow", "run")
	if res.Code != 0 || !strings.Contains(res.Stdout, "KOD_BRANCH=release") {
		t.Errorf("every workflow with $BRANCH: exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}

	// The summary lists the step after the failure as skipped, with why.
	res = c.run(p.Dir, "", "workflow", "fail.toml")
	if res.Code != 1 || !regexp.MustCompile(`\nnever +fail\.toml +skipped +- +needs 'breaks', which failed`).MatchString(res.Stdout) || !strings.Contains(res.Stdout, "0 passed, 1 failed, 1 skipped") {
		t.Errorf("summary of a failed local run: exit %d\n%s", res.Code, res.Stdout)
	}

	var run client.Run
	res = c.run(p.Dir, "", "workflow", "fail.toml", "--json")
	decodeJSON(t, res.Stdout, &run)
	if res.Code != 1 || run.Status != forge.RunFailed || len(run.Result.Steps) != 2 || run.Result.Steps[1].Status != forge.StepSkipped || !strings.Contains(res.Stderr, "about to fail") {
		t.Errorf("failing TOML: exit %d, run %+v\n%s", res.Code, run, res.Stderr)
	}
	for _, kind := range []string{"container", "volume", "network"} {
		args := []string{kind, "ls", "-q", "--filter", "name=kod-" + run.ID}
		if kind == "container" {
			args = []string{"ps", "-a", "-q", "--filter", "name=kod-" + run.ID}
		}
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("%s left behind by the local run: %q %v", kind, out, err)
		}
	}
	c.fails(`"statsu" is neither a workflow file nor a command`, "workflow", "statsu")
}
