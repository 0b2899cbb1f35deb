package e2e

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// waitForStep is a step script line that marks name started in the workspace
// and waits (a minute at most, to catch a hang) until other did too.
func waitForStep(name, other string) string {
	return "touch started-" + name + "; i=0; while ! test -f started-" + other + "; do i=$((i+1)); test $i -lt 600; sleep 0.1; done"
}

// TestCLIWorkflowLocalPipeline: a local run executes needs as a graph (unit
// and lint at the same time, after build, before package) and a matrix as
// separate instances, prints every line of steps that may run at once
// under a [STEP] prefix, lists every step in the summary, and leaves
// nothing behind.
func TestCLIWorkflowLocalPipeline(t *testing.T) {
	t.Parallel()
	c := newCLI(t, nil)
	p := newProject(t, "main", map[string]string{
		"pipe.toml": `
[[steps]]
name = "build"
run = "mkdir -p out && echo app > out/app"

[[steps]]
name = "unit"
needs = ["build"]
run = "` + waitForStep("unit", "lint") + `; for n in 1 2 3; do echo unit line $n; done"

[[steps]]
name = "lint"
needs = ["build"]
run = "` + waitForStep("lint", "unit") + `; for n in 1 2 3; do echo lint line $n; done"

[[steps]]
name = "package"
needs = ["unit", "lint"]
run = "cat out/app; ls started-unit started-lint"
`,
		"matrix.toml": `
[matrix]
N = ["1", "2"]

[[steps]]
name = "show"
run = "echo n=$MATRIX_N; test ! -e out"

[[steps]]
name = "after {matrix.N}"
run = "true"
`,
	})
	res := c.run(p.Dir, "", "workflow", "pipe.toml", "matrix.toml")
	if res.Code != 0 {
		t.Fatalf("exit %d\n%s\n%s", res.Code, res.Stdout, res.Stderr)
	}
	for _, want := range []string{"[unit] unit line 1\n", "[unit] unit line 2\n", "[unit] unit line 3\n",
		"[lint] lint line 1\n", "[lint] lint line 2\n", "[lint] lint line 3\n", "[package] app\n", "8 passed, 0 failed, 0 skipped\n"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.Stdout)
		}
	}
	// "show" is in both instances: its lines are prefixed with its id.
	for _, n := range []string{"1", "2"} {
		if !regexp.MustCompile(`\n\[[a-z0-9.-]+\.show\] n=` + n + `\n`).MatchString(res.Stdout) {
			t.Errorf("no line of show with N=%s:\n%s", n, res.Stdout)
		}
	}
	if !regexp.MustCompile(`\nshow +matrix\.toml \(N=2\) +passed`).MatchString(res.Stdout) {
		t.Errorf("the summary lacks the matrix instance:\n%s", res.Stdout)
	}
	// The summary lists exactly the plan's steps: no row of a parsed,
	// unexpanded step.
	if strings.Contains(res.Stdout, "{matrix") || strings.Contains(res.Stdout, "not run") ||
		!regexp.MustCompile(`\nafter 2 +matrix\.toml \(N=2\) +passed`).MatchString(res.Stdout) {
		t.Errorf("the summary lists other steps than the plan's:\n%s", res.Stdout)
	}
	m := regexp.MustCompile(`Run ([a-z0-9]+) completed`).FindStringSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("no run id in the output:\n%s", res.Stdout)
	}
	for _, args := range [][]string{{"ps", "-a"}, {"volume", "ls"}, {"network", "ls"}} {
		out, err := exec.Command("docker", append(args, "-q", "--filter", "label=dev.kod.run="+m[1])...).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("docker %s: left behind by the local run: %q %v", args[0], out, err)
		}
	}
}
