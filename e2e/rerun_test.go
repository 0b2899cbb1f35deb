package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

var rerunFiles = map[string]string{
	".kod/workflows/good.toml": `
[[steps]]
name = "good"
run = "mkdir -p out; echo good-output-$KOD_RUN_ID; echo kept > out/good.txt"
artifacts = ["out/good.txt"]
`,
	".kod/workflows/bad.toml": `
[[steps]]
name = "bad"
run = "echo bad-output-$KOD_RUN_ID; exit 1"
`,
	".kod/workflows/slow.toml": `
[on]
push = []

[[steps]]
name = "slow"
run = "sleep 300"
`,
}

// TestRerun: a failed-only re-run of a 2-file run where one file failed
// runs only that file again; the other's steps are reused with their
// output, logs and artifacts. A whole re-run runs both. A run still
// running answers 409.
func TestRerun(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("again")
	p := newProject(t, "main", rerunFiles)
	p.git("push", "-q", s.gitURL("again", adminToken), "main")
	first := s.waitRun("again", s.onlyRun("again").ID, 3*time.Minute)
	if first.Status != forge.RunFailed {
		t.Fatalf("first run: %s", first.Status)
	}

	var q struct{ ID, Status, RerunOf string }
	s.mustDo("POST", "/repos/again/workflows/"+first.ID+"/rerun", adminToken, map[string]bool{"failedOnly": true}, http.StatusAccepted, &q)
	if q.Status != "queued" || q.RerunOf != first.ID {
		t.Errorf("rerun answer: %+v", q)
	}
	second := s.waitRun("again", q.ID, 3*time.Minute)
	st := stepsByName(t, second)
	if second.Trigger != forge.TriggerRerun || second.RerunOf != first.ID || second.Commit != first.Commit {
		t.Errorf("re-run record: trigger %s rerunOf %s commit %s", second.Trigger, second.RerunOf, second.Commit)
	}
	firstSteps := stepsByName(t, first)
	if g := st["good"]; !g.Reused || g.Output != firstSteps["good"].Output || !strings.Contains(g.Output, "good-output-"+first.ID) {
		t.Errorf("good was not reused as it was: %+v", g)
	}
	if b := st["bad"]; b.Reused || !strings.Contains(b.Output, "bad-output-"+second.ID) || b.Status != forge.StepFailed {
		t.Errorf("bad did not run again: %+v", b)
	}
	if logs := s.logs("again", second.ID); !strings.Contains(logs, "good-output-"+first.ID) || !strings.Contains(logs, "bad-output-"+second.ID) {
		t.Errorf("logs of the re-run:\n%s", logs)
	}
	if b, _ := s.download("again", second.ID, "out/good.txt"); string(b) != "kept\n" {
		t.Errorf("reused artifact: %q", b)
	}

	s.mustDo("POST", "/repos/again/workflows/"+first.ID+"/rerun", adminToken, map[string]bool{"failedOnly": false}, http.StatusAccepted, &q)
	whole := s.waitRun("again", q.ID, 3*time.Minute)
	for _, st := range whole.Result.Steps {
		if st.Reused || !strings.Contains(st.Output, "-output-"+whole.ID) {
			t.Errorf("whole re-run: step %s %+v", st.Name, st)
		}
	}

	// 409 while running.
	var slow struct{ ID string }
	s.mustDo("POST", "/repos/again/workflows", adminToken, map[string]any{"branch": "main", "files": []string{".kod/workflows/slow.toml"}}, http.StatusAccepted, &slow)
	waitStepRunning(t, s, "again", slow.ID, "slow")
	if status, body := s.do("POST", "/repos/again/workflows/"+slow.ID+"/rerun", adminToken, map[string]bool{}); status != http.StatusConflict || !strings.Contains(string(body), "still running") {
		t.Errorf("rerun of a running run: %d %s", status, body)
	}
	s.mustDo("POST", "/repos/again/workflows/"+slow.ID+"/cancel", adminToken, nil, http.StatusAccepted, nil)
	s.waitRun("again", slow.ID, 3*time.Minute)
	c := newCLI(t, s)
	if out := c.ok("workflow", "rerun", "again", first.ID, "--failed"); !strings.Contains(out, "re-run of "+first.ID) {
		t.Errorf("kod workflow rerun: %s", out)
	}
	assertNoLeftovers(t, s)
}
