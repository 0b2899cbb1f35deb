package kube

import (
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// TestServicesCachesArtifactsUnsupported: the Kubernetes backend runs no
// services, keeps no caches and reads no artifacts yet. A workflow using
// one fails with an error saying so (the others of the run are not
// affected), and nothing is left on the cluster.
func TestServicesCachesArtifactsUnsupported(t *testing.T) {
	s := startServer(t)
	s.pushFiles("unsupported", "main", map[string]string{
		"svc.toml": `
[[services]]
name = "db"
image = "kod/db:local"
pull = "never"

[[steps]]
name = "query"
run = "echo must-not-run"
`,
		"cache.toml": `
[[caches]]
path = "deps"
key = "deps-{branch}"

[[steps]]
name = "fill"
run = "echo must-not-run"
`,
		"art.toml": `
[[steps]]
name = "build"
run = "echo built > out.txt; echo build-ran"
artifacts = ["out.txt"]
`,
		"plain.toml": `
[[steps]]
name = "plain"
run = "echo plain-ok"
`,
	})
	run := s.onlyRun("unsupported")
	done := s.waitRun("unsupported", run.ID)
	if done.Status != forge.RunFailed || done.Result == nil {
		t.Fatalf("run = %s %+v; want failed", done.Status, done.Result)
	}
	for _, st := range done.Result.Steps {
		t.Logf("%s %s: status %s success %v error %q output %q", st.Workflow, st.Name, st.Status, st.Success, st.Error, st.Output)
	}
	want := map[string]string{
		"query": "the kubernetes backend cannot run services yet",
		"fill":  "this server keeps no caches",
		"build": "the kubernetes backend cannot keep artifacts yet",
	}
	seen := 0
	for _, st := range done.Result.Steps {
		if st.Name == "plain" {
			seen++
			if !st.Success || !strings.Contains(st.Output, "plain-ok") {
				t.Errorf("the plain workflow's step: %+v", st)
			}
			continue
		}
		w, ok := want[st.Name]
		if !ok {
			continue
		}
		seen++
		// build ran and then failed; query and fill never ran.
		if st.Status == forge.StepCompleted || !strings.Contains(st.Error, w) {
			t.Errorf("step %s: %s, error %q; want %q", st.Name, st.Status, st.Error, w)
		}
		if strings.Contains(st.Output, "must-not-run") {
			t.Errorf("step %s ran: %q", st.Name, st.Output)
		}
	}
	if seen != 4 {
		t.Errorf("saw %d of the 4 steps", seen)
	}
	if strings.Contains(s.Logs(), "removing a service") {
		t.Error("removing the service that never started was an error")
	}
	s.assertNothingLeft()
}
