package e2e

import (
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// TestStepShells: `shell = "bash"` runs the script with bash -eo pipefail on
// the real engine (`false | true` fails the step, bash's `time` works), a
// shell the image lacks fails its step with a clear line and exit 127, and
// steps without `shell` keep Kod's sh.
func TestStepShells(t *testing.T) {
	t.Parallel()
	image := gitImage(t) // busybox with bash
	s := startServer(t, "", nil)
	s.createRepo("shells")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `image = "` + image + `"

[[steps]]
name = "pipefail"
shell = "bash"
needs = []
run = "false | true; echo pipefail-not-reached"

[[steps]]
name = "time"
shell = "bash"
needs = []
run = "time true; echo timed-in-$0"

[[steps]]
name = "missing"
shell = "zsh"
needs = []
run = "echo zsh-not-reached"

[[steps]]
name = "default"
needs = []
run = "echo sh-ran; [ -z \"$BASH_VERSION\" ] && echo not-bash"
`})
	p.git("push", "-q", s.gitURL("shells", adminToken), "main")
	run := s.waitRun("shells", s.onlyRun("shells").ID, 0)
	log := s.logs("shells", run.ID)
	if run.Status != forge.RunFailed {
		t.Fatalf("run %s, want failed:\n%s", run.Status, log)
	}
	st := map[string]forge.StepResult{}
	for _, r := range run.Result.Steps {
		st[r.Name] = r
	}
	exit := func(r forge.StepResult) int {
		if r.ExitCode == nil {
			return -1
		}
		return *r.ExitCode
	}
	if r := st["pipefail"]; r.Success || exit(r) != 1 || strings.Contains(r.Output, "pipefail-not-reached") {
		t.Errorf("pipefail step: success=%v exit=%d output %q", r.Success, exit(r), r.Output)
	}
	if r := st["time"]; !r.Success || !strings.Contains(r.Output, "real") || !strings.Contains(r.Output, "timed-in-bash") {
		t.Errorf("time step: success=%v error=%q output %q", r.Success, r.Error, r.Output)
	}
	if r := st["missing"]; r.Success || exit(r) != 127 || !strings.Contains(r.Output, "kod: shell 'zsh' not found") || strings.Contains(r.Output, "zsh-not-reached") {
		t.Errorf("missing shell step: success=%v exit=%d output %q", r.Success, exit(r), r.Output)
	}
	if r := st["default"]; !r.Success || !strings.Contains(r.Output, "sh-ran\nnot-bash") {
		t.Errorf("default step: success=%v output %q", r.Success, r.Output)
	}
	if t.Failed() {
		t.Logf("log:\n%s", log)
	}
}
