package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kod-forge/kod/forge"
)

var (
	gitImageOnce sync.Once
	gitImageErr  error
	gitImageOut  []byte
)

// gitImage builds kod/git:local (scripts/build-git-image) once: a step
// image with git.
func gitImage(t *testing.T) string {
	t.Helper()
	gitImageOnce.Do(func() {
		gitImageOut, gitImageErr = exec.Command("bash", filepath.Join("..", "scripts", "build-git-image")).CombinedOutput()
	})
	if gitImageErr != nil {
		t.Fatalf("build-git-image: %v\n%s", gitImageErr, gitImageOut)
	}
	return "kod/git:local"
}

// checks.sh prints what a step sees of the checkout, one "<who> key=value"
// line each, as root or as any other user.
const checksScript = `who=$(id -un)
echo "$who describe=$(git describe --tags 2>&1)"
echo "$who head=$(git log -1 --format=%H)"
echo "$who commit=$KOD_COMMIT"
echo "$who status=[$(git status --porcelain 2>&1)]"
echo "$who branch=$(git rev-parse --abbrev-ref HEAD)"
echo "$who origin=$(git remote get-url origin)"
echo "$who count=$(git rev-list --count HEAD)"
echo "$who shallow=$(git rev-parse --is-shallow-repository)"
echo "$who ignored=$(cat ignored.txt)"
echo "$who subst=$(cat version.txt)"
`

// TestWorkspaceIsAGitCheckout: a step's workspace is a git working tree of
// the pushed commit, usable by root and by another user, with the files
// git archive would leave out or rewrite, and the history depth of
// KOD_CLONE_DEPTH; the step's stdin is an empty pipe and a one-CPU limit
// shows as one CPU.
func TestWorkspaceIsAGitCheckout(t *testing.T) {
	t.Parallel()
	image := gitImage(t)
	p := newProject(t, "main", map[string]string{"n": "1\n"})
	p.git("tag", "-a", "-m", "first release", "v1.0")
	p.commit("second", map[string]string{"n": "2\n"})
	tip := p.commit("third", map[string]string{
		".gitattributes": "ignored.txt export-ignore\nversion.txt export-subst\n",
		"ignored.txt":    "kept\n",
		"version.txt":    "$Format:%H$\n",
		"checks.sh":      checksScript,
		".kod/workflows/ci.toml": `image = "` + image + `"
[[steps]]
name = "root"
run = "sh checks.sh"
[[steps]]
name = "nobody"
run = "su -s /bin/sh nobody -c 'sh checks.sh'"
[[steps]]
name = "stdin and cpus"
run = """
[ -p /dev/stdin ] && echo "stdin=pipe"
echo "stdin bytes=$(cat | wc -c)"
echo "nproc=$(nproc)"
"""
`,
	})
	for _, tc := range []struct {
		name  string
		depth string
		want  map[string]string
	}{
		{"full", "0", map[string]string{"describe": "v1.0-2-g" + tip[:7], "count": "3", "shallow": "false"}},
		{"depth 2", "2", map[string]string{"count": "2", "shallow": "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, "", []string{"KOD_CLONE_DEPTH=" + tc.depth, "KOD_STEP_CPUS=1", "KOD_PUBLIC_URL=http://kod.test:3000/"})
			s.createRepo("checkout")
			p.git("push", "-q", s.gitURL("checkout", adminToken), "main", "v1.0")
			run := s.waitRun("checkout", s.onlyRun("checkout").ID, 0)
			log := s.logs("checkout", run.ID)
			if run.Status != forge.RunCompleted || !run.Result.Success {
				t.Fatalf("run %s: %s\n%s", run.Status, run.Error, log)
			}
			want := map[string]string{
				"head": tip, "commit": tip, "status": "[]", "branch": "main",
				"origin": "http://kod.test:3000/repos/checkout.git", "ignored": "kept", "subst": "$Format:%H$",
			}
			for k, v := range tc.want {
				want[k] = v
			}
			for _, who := range []string{"root", "nobody"} {
				for k, v := range want {
					if line := who + " " + k + "=" + v + "\n"; !strings.Contains(log, line) {
						t.Errorf("log lacks %q", line)
					}
				}
			}
			// With one CPU on the host nothing is pinned, and nproc is 1 anyway.
			for _, line := range []string{"stdin=pipe\n", "stdin bytes=0\n", "nproc=1\n"} {
				if !strings.Contains(log, line) {
					t.Errorf("log lacks %q", line)
				}
			}
			if t.Failed() || testing.Verbose() {
				t.Logf("log:\n%s", log)
			}
		})
	}
}
