package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIWorkflowLocalGit: a local run's workspace has a .git of HEAD as a
// server run's has, so `git describe` finds the tag and `git status` sees
// the uncommitted change; the banner names the file's image.
func TestCLIWorkflowLocalGit(t *testing.T) {
	t.Parallel()
	image := gitImage(t)
	c := newCLI(t, nil)
	p := newProject(t, "main", map[string]string{
		"git.toml": `image = "` + image + `"

[[steps]]
name = "describe"
run = "git describe --tags; git rev-parse --abbrev-ref HEAD; git status --porcelain"
`,
		"notes.txt": "committed\n",
	})
	p.git("tag", "-a", "-m", "release", "v1.2.3")
	writeFile(t, filepath.Join(p.Dir, "notes.txt"), "changed\n")
	res := c.run(p.Dir, "", "workflow", "git.toml")
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, want := range []string{"==> describe\nv1.2.3\nmain\n", " M notes.txt\n", "1 passed, 0 failed, 0 skipped\n"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Stdout)
		}
	}
	if !strings.Contains(res.Stderr, "image "+image+")") {
		t.Errorf("the banner does not name the file's image:\n%s", res.Stderr)
	}
}
