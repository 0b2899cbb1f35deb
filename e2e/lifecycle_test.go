package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// TestShutdownAndRestart: SIGINT during a step stops the step and removes
// its containers; after a restart the run is failed with the reason, and a
// run queued before the restart still runs. A step whose image cannot be
// pulled fails with the engine's reason.
func TestShutdownAndRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil, "--max-concurrent-runs", "1", "--stop-grace", "2s")
	s.createRepo("long")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "sleeps"
run = "echo started; sleep 300"
`})
	p.git("push", "-q", s.gitURL("long", adminToken), "main")
	p.git("checkout", "-q", "-b", "other")
	p.commit("pull", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "missing image"
image = "registry.invalid/nothing:1"
run = "true"
`})
	p.git("push", "-q", s.gitURL("long", adminToken), "other")
	runs := s.runs("long")
	if len(runs) != 2 {
		t.Fatalf("runs: %+v", runs)
	}
	sleeping, pulling := runs[1], runs[0]
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.logs("long", sleeping.ID), "started") {
		if time.Now().After(deadline) {
			t.Fatalf("step never started:\n%s", s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.Stop() // fails the test unless the server exits (well before the 300 s sleep)
	assertNoLeftovers(t, s)

	s.Restart()
	run := s.waitRun("long", sleeping.ID, time.Minute)
	if run.Status != forge.RunFailed || !strings.Contains(run.Error, "shut down") {
		t.Errorf("run interrupted by shutdown: %s %q", run.Status, run.Error)
	}
	run = s.waitRun("long", pulling.ID, time.Minute)
	if run.Status != forge.RunFailed || len(run.Result.Steps) != 1 {
		t.Fatalf("queued run after restart: %s %q %+v", run.Status, run.Error, run.Result)
	}
	if e := run.Result.Steps[0].Error; !strings.Contains(e, "registry.invalid/nothing:1") || !strings.Contains(e, "pull") {
		t.Errorf("pull failure error: %q", e)
	}
	// The pull failure is in the step's section of the logs too.
	if logs := s.logs("long", pulling.ID); !strings.Contains(logs, "==> missing image\nkod: ") || !strings.Contains(logs, "registry.invalid/nothing:1") {
		t.Errorf("logs of the run whose image could not be pulled:\n%s", logs)
	}
	assertNoLeftovers(t, s)
}
