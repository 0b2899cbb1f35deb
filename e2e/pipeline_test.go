package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// The pipeline engine on the real Docker engine: steps as a graph of
// needs, workflow files and matrix instances in parallel, each in its own
// workspace, and what the record, the logs and the CLI show of them.

const diamond = `
[[steps]]
name = "build"
run = "echo built-artifact > out.txt; echo built"

[[steps]]
name = "unit"
needs = ["build"]
run = "cat out.txt; sleep 3; echo unit done"

[[steps]]
name = "lint"
needs = ["build"]
run = "cat out.txt; sleep 3; echo lint done; test -z \"$LINT_FAILS\""

[[steps]]
name = "package"
needs = ["unit", "lint"]
run = "echo packaged"

[[steps]]
name = "after"
run = "echo after package"
`

// stepsByName indexes a run's steps by name.
func stepsByName(t *testing.T, run forge.Run) map[string]forge.StepResult {
	t.Helper()
	m := map[string]forge.StepResult{}
	for _, st := range run.Result.Steps {
		m[st.Name] = st
	}
	return m
}

// overlap reports whether two steps ran at the same time.
func overlap(a, b forge.StepResult) bool {
	return a.StartedAt != 0 && b.StartedAt != 0 && a.StartedAt < b.CompletedAt && b.StartedAt < a.CompletedAt
}

// TestPipelineDiamond: build -> unit, lint (at once, both see build's
// file) -> package, then "after" (no needs: waits for package, the step
// written before it). Then lint failing skips package and after, while
// unit completes.
func TestPipelineDiamond(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("diamond")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": diamond})
	p.git("push", "-q", s.gitURL("diamond", adminToken), "main")
	run := s.waitRun("diamond", s.onlyRun("diamond").ID, 3*time.Minute)
	if run.Status != forge.RunCompleted {
		t.Fatalf("diamond: %s %q %+v", run.Status, run.Error, run.Result)
	}
	st := stepsByName(t, run)
	if !overlap(st["unit"], st["lint"]) {
		t.Errorf("unit and lint did not overlap: unit %d-%d, lint %d-%d", st["unit"].StartedAt, st["unit"].CompletedAt, st["lint"].StartedAt, st["lint"].CompletedAt)
	}
	for _, name := range []string{"unit", "lint"} {
		if !strings.Contains(st[name].Output, "built-artifact") {
			t.Errorf("%s did not see build's file: %q", name, st[name].Output)
		}
		if st[name].StartedAt < st["build"].CompletedAt {
			t.Errorf("%s started before build ended", name)
		}
	}
	if pk := st["package"]; pk.StartedAt < st["unit"].CompletedAt || pk.StartedAt < st["lint"].CompletedAt {
		t.Errorf("package started before unit and lint ended: %+v", run.Result.Steps)
	}
	if st["after"].StartedAt < st["package"].CompletedAt || !slices.Equal(st["after"].Needs, []string{"ci.package"}) {
		t.Errorf("after (no needs) did not wait for package: %+v", st["after"])
	}
	t.Logf("unit %d-%d, lint %d-%d (ms after build's end)", st["unit"].StartedAt-st["build"].CompletedAt, st["unit"].CompletedAt-st["build"].CompletedAt,
		st["lint"].StartedAt-st["build"].CompletedAt, st["lint"].CompletedAt-st["build"].CompletedAt)

	p.commit("lint fails", map[string]string{".kod/workflows/ci.toml": strings.Replace(diamond, `[[steps]]
name = "lint"`, `[[steps]]
name = "lint"
env = { LINT_FAILS = "yes" }`, 1)})
	p.git("push", "-q", s.gitURL("diamond", adminToken), "main")
	var failed forge.Run
	for _, r := range s.runs("diamond") {
		if r.ID != run.ID {
			failed = s.waitRun("diamond", r.ID, 3*time.Minute)
		}
	}
	if failed.Status != forge.RunFailed {
		t.Fatalf("lint failing: %s %q", failed.Status, failed.Error)
	}
	st = stepsByName(t, failed)
	want := map[string]forge.StepStatus{"build": "completed", "unit": "completed", "lint": "failed", "package": "skipped", "after": "skipped"}
	for name, status := range want {
		if st[name].Status != status {
			t.Errorf("%s: %s, want %s (%+v)", name, st[name].Status, status, st[name])
		}
	}
	if !strings.Contains(st["unit"].Output, "unit done") || st["package"].Error != "needs 'lint', which failed" {
		t.Errorf("unit %q; package skipped because %q", st["unit"].Output, st["package"].Error)
	}
	assertNoLeftovers(t, s)
}

// TestPipelineFilesInSeparateWorkspaces: two workflow files run at the
// same time, each in its own workspace: a file written by one is absent
// in the other.
func TestPipelineFilesInSeparateWorkspaces(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("two")
	wf := func(me, other string) string {
		return fmt.Sprintf(`
[[steps]]
name = "%[1]s"
run = "echo %[1]s > %[1]s.txt; sleep 3; ls; test -e README && test ! -e %[2]s.txt"
`, me, other)
	}
	p := newProject(t, "main", map[string]string{".kod/workflows/a.toml": wf("a", "b"), ".kod/workflows/b.toml": wf("b", "a"), "README": "hi\n"})
	p.git("push", "-q", s.gitURL("two", adminToken), "main")
	run := s.waitRun("two", s.onlyRun("two").ID, 3*time.Minute)
	if run.Status != forge.RunCompleted {
		t.Fatalf("two files: %s %q %+v", run.Status, run.Error, run.Result)
	}
	st := stepsByName(t, run)
	if !overlap(st["a"], st["b"]) {
		t.Errorf("the two files did not run at the same time: %+v", run.Result.Steps)
	}
	if st["a"].Workflow != ".kod/workflows/a.toml" || st["b"].Workflow != ".kod/workflows/b.toml" || st["a"].ID != "a.a" {
		t.Errorf("steps' workflows and ids: %+v", run.Result.Steps)
	}
	assertNoLeftovers(t, s)
}

// TestPipelineMatrix: a 2x2 matrix with one exclude gives 3 instances with
// their MATRIX_* environment, names and image.
func TestPipelineMatrix(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("matrix")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
image = "kod/{matrix.IMG}:local"

[matrix]
GO = ["1.25", "1.26"]
DB = ["pg", "sqlite"]
IMG = ["busybox"]
exclude = [{ GO = "1.25", DB = "sqlite" }]

[[steps]]
name = "test {matrix.DB}"
run = "echo go=$MATRIX_GO db=$MATRIX_DB; busybox | head -1"
`})
	p.git("push", "-q", s.gitURL("matrix", adminToken), "main")
	run := s.waitRun("matrix", s.onlyRun("matrix").ID, 3*time.Minute)
	if run.Status != forge.RunCompleted || len(run.Result.Steps) != 3 {
		t.Fatalf("matrix: %s %q %+v", run.Status, run.Error, run.Result)
	}
	want := []struct{ workflow, name, out string }{
		{".kod/workflows/ci.toml (GO=1.25, DB=pg, IMG=busybox)", "test pg", "go=1.25 db=pg"},
		{".kod/workflows/ci.toml (GO=1.26, DB=pg, IMG=busybox)", "test pg", "go=1.26 db=pg"},
		{".kod/workflows/ci.toml (GO=1.26, DB=sqlite, IMG=busybox)", "test sqlite", "go=1.26 db=sqlite"},
	}
	ids := map[string]bool{}
	for i, w := range want {
		got := run.Result.Steps[i]
		if got.Workflow != w.workflow || got.Name != w.name || !strings.Contains(got.Output, w.out) || !strings.Contains(got.Output, "BusyBox") {
			t.Errorf("instance %d: %q %q %q, want %q %q %q", i, got.Workflow, got.Name, got.Output, w.workflow, w.name, w.out)
		}
		ids[got.ID] = true
	}
	if len(ids) != 3 {
		t.Errorf("step ids not unique: %v", ids)
	}
	assertNoLeftovers(t, s)
}

const parallelWait = `
[[steps]]
name = "one"
needs = []
run = "echo one started; sleep 300"

[[steps]]
name = "two"
needs = []
run = "echo two started; sleep 300"

[[steps]]
name = "three"
needs = ["one", "two"]
run = "echo never"
`

// waitRunning polls the run until n of its steps are running and their
// first line is in the log.
func (s *server) waitRunning(repo, id string, n int, lines ...string) forge.Run {
	s.t.Helper()
	for _, l := range lines {
		s.waitLog(repo, id, l)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var run forge.Run
		s.mustDo("GET", "/repos/"+repo+"/workflows/"+id, adminToken, nil, http.StatusOK, &run)
		running := 0
		if run.Result != nil {
			for _, st := range run.Result.Steps {
				if st.Status == forge.StepRunning {
					running++
				}
			}
		}
		if running == n {
			return run
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d steps of %s never ran at once: %+v", n, id, run.Result)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPipelineCancelParallelSteps: cancelling a run with two steps running
// stops both (and cancels the step waiting for them) and leaves no
// container, volume or network.
func TestPipelineCancelParallelSteps(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil, "--stop-grace", "5s")
	s.createRepo("pcancel")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": parallelWait})
	p.git("push", "-q", s.gitURL("pcancel", adminToken), "main")
	id := s.onlyRun("pcancel").ID
	s.waitRunning("pcancel", id, 2, "one started", "two started")
	s.mustDo("POST", "/repos/pcancel/workflows/"+id+"/cancel", adminToken, nil, http.StatusAccepted, nil)
	final := s.waitRun("pcancel", id, 3*time.Minute)
	if final.Status != forge.RunCancelled {
		t.Fatalf("status %s %q", final.Status, final.Error)
	}
	st := stepsByName(t, final)
	for _, name := range []string{"one", "two", "three"} {
		if st[name].Status != forge.StepCancelled || st[name].Error != "the run was cancelled" {
			t.Errorf("%s after the cancel: %+v", name, st[name])
		}
	}
	if !strings.Contains(st["one"].Output, "one started") || st["three"].StartedAt != 0 {
		t.Errorf("steps after cancel: %+v", final.Result.Steps)
	}
	// The final state is stored before the removal: wait for it.
	assertNoLeftovers(t, s)
}

// TestPipelineKillDuringParallelSteps: kill -9 of the server while two
// steps run, then a restart: both are failed, the waiting step cancelled,
// and every object of the run removed.
func TestPipelineKillDuringParallelSteps(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil, "--max-parallel-steps", "4")
	s.createRepo("pkill")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": parallelWait, ".kod/workflows/other.toml": "[[steps]]\nname = \"other\"\nrun = \"echo other started; sleep 300\"\n"})
	p.git("push", "-q", s.gitURL("pkill", adminToken), "main")
	id := s.onlyRun("pkill").ID
	s.waitRunning("pkill", id, 3, "one started", "two started", "other started")
	s.Kill()
	left := dockertest.RunLeftovers(t, s.Instance, id)
	if len(left) < 5 { // 3 containers, 2 workspaces' volumes and networks
		t.Fatalf("the killed server left %v: the test would prove little", left)
	}
	s.Restart()
	final := s.waitRun("pkill", id, 2*time.Minute)
	if final.Status != forge.RunFailed || !strings.Contains(final.Error, "restarted") {
		t.Fatalf("run after kill -9 and restart: %s %q", final.Status, final.Error)
	}
	st := stepsByName(t, final)
	for _, name := range []string{"one", "two", "other"} {
		if st[name].Status != forge.StepFailed || !strings.Contains(st[name].Error, "restarted") || !strings.Contains(st[name].Output, name+" started") {
			t.Errorf("%s after the restart: %+v", name, st[name])
		}
	}
	if st["three"].Status != forge.StepCancelled {
		t.Errorf("the pending step after the restart: %+v", st["three"])
	}
	deadline := time.Now().Add(30 * time.Second)
	for left := dockertest.RunLeftovers(t, s.Instance, id); len(left) > 0; left = dockertest.RunLeftovers(t, s.Instance, id) {
		if time.Now().After(deadline) {
			t.Fatalf("objects of the run left after the restart: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d objects left by the kill, all removed after the restart", len(left))
}

// TestPipelineFollowParallelLines: ?follow=true and SSE both deliver every
// line of two steps printing at once (counted), the plain stream with a
// "[name] " prefix on lines of steps running at once.
func TestPipelineFollowParallelLines(t *testing.T) {
	t.Parallel()
	const n = 300
	s := startServer(t, "", nil)
	s.createRepo("pfollow")
	step := func(name string) string {
		return fmt.Sprintf(`
[[steps]]
name = "%[1]s"
needs = []
run = "i=0; while [ $i -lt %[2]d ]; do echo %[1]s line $i; i=$((i+1)); [ $((i %% 50)) = 0 ] && sleep 0.2; done; true"
`, name, n)
	}
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"wait\"\nrun = \"sleep 2\"\n" + strings.ReplaceAll(step("left")+step("right"), "needs = []", "needs = [\"wait\"]")})
	p.git("push", "-q", s.gitURL("pfollow", adminToken), "main")
	id := s.onlyRun("pfollow").ID
	base := "/repos/pfollow/workflows/" + id + "/logs"
	plain := s.stream(base + "?follow=true")
	sse := s.stream(base, "Accept", "text/event-stream")
	sseLines := map[string]map[string]bool{}
	ids := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(sse.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var d struct{ Step, ID, Line string }
			if json.Unmarshal([]byte(data), &d) != nil || d.Line == "" {
				continue
			}
			if sseLines[d.Step] == nil {
				sseLines[d.Step] = map[string]bool{}
			}
			sseLines[d.Step][d.Line] = true
			ids[d.ID] = true
		}
	}()
	body, err := io.ReadAll(plain.Body)
	if err != nil {
		t.Fatal(err)
	}
	<-done
	final := s.waitRun("pfollow", id, time.Minute)
	st := stepsByName(t, final)
	if final.Status != forge.RunCompleted || !overlap(st["left"], st["right"]) {
		t.Fatalf("run %s; left and right overlap: %v", final.Status, overlap(st["left"], st["right"]))
	}
	followed := string(body)
	prefixed := 0
	for _, name := range []string{"left", "right"} {
		for i := range n {
			line := fmt.Sprintf("%s line %d", name, i)
			got := strings.Count(followed, "\n"+line+"\n") + strings.Count(followed, "\n["+name+"] "+line+"\n")
			prefixed += strings.Count(followed, "\n["+name+"] "+line+"\n")
			if got != 1 {
				t.Errorf("?follow=true has %q %d times", line, got)
			}
			if !sseLines[name][line] {
				t.Errorf("SSE lost %q", line)
			}
		}
		if len(sseLines[name]) != n {
			t.Errorf("SSE: %d lines of %s, want %d", len(sseLines[name]), name, n)
		}
	}
	if prefixed == 0 || !regexp.MustCompile(`\[left\] left line \d+\n(\[left\] left line \d+\n)*\[right\] right line`).MatchString(followed) &&
		!regexp.MustCompile(`\[right\] right line \d+\n(\[right\] right line \d+\n)*\[left\] left line`).MatchString(followed) {
		t.Errorf("the followed log does not interleave the two steps (%d prefixed lines)", prefixed)
	}
	if !ids["ci.left"] || !ids["ci.right"] {
		t.Errorf("SSE step ids: %v", ids)
	}
	t.Logf("followed %d lines, %d with a prefix; SSE %d+%d lines", 2*n, prefixed, len(sseLines["left"]), len(sseLines["right"]))
}

// TestPipelineFailedThirdOfFour: the 4th step after a failing 3rd is
// listed skipped with its reason in the record, the log and `kod workflow
// show`.
func TestPipelineFailedThirdOfFour(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	c := newCLI(t, s)
	s.createRepo("four")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "fetch"
run = "echo fetched"
[[steps]]
name = "build"
run = "echo built"
[[steps]]
name = "test"
run = "echo 3 tests failed; exit 1"
[[steps]]
name = "install"
run = "echo installed"
`})
	p.git("push", "-q", s.gitURL("four", adminToken), "main")
	run := s.waitRun("four", s.onlyRun("four").ID, 3*time.Minute)
	if run.Status != forge.RunFailed || len(run.Result.Steps) != 4 {
		t.Fatalf("run: %s %+v", run.Status, run.Result)
	}
	install := run.Result.Steps[3]
	if install.Name != "install" || install.Status != forge.StepSkipped || !install.Skipped || install.Error != "needs 'test', which failed" {
		t.Errorf("the 4th step in the record: %+v", install)
	}
	log := s.logs("four", run.ID)
	if !strings.Contains(log, "==> test\n3 tests failed\n==> install (skipped: needs 'test', which failed)\n") {
		t.Errorf("the log:\n%s", log)
	}
	show := c.ok("workflow", "show", "four", run.ID)
	if !regexp.MustCompile(`\ninstall +\.kod/workflows/ci\.toml +skipped +- +needs 'test', which failed`).MatchString(show) ||
		!regexp.MustCompile(`\ntest +\.kod/workflows/ci\.toml +failed`).MatchString(show) {
		t.Errorf("kod workflow show:\n%s", show)
	}
}
