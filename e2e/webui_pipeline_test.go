package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kod-forge/kod/forge"
)

// TestWebUIParallelRun: the run page of a run with parallel steps shows
// every planned step from the start, the needs graph with the steps' real
// ids and statuses, and streams both parallel steps' lines into their own
// logs, none lost.
func TestWebUIParallelRun(t *testing.T) {
	b := newBrowser(t)
	s := startServer(t, "", nil)
	s.createRepo("graph")
	const n = 40
	step := func(name string) string {
		return `
[[steps]]
name = "` + name + `"
needs = ["build"]
run = "i=0; while [ $i -lt 40 ]; do echo ` + name + ` line $i; i=$((i+1)); [ $((i % 10)) = 0 ] && sleep 0.5; done; true"
`
	}
	wf := "[[steps]]\nname = \"build\"\nrun = \"sleep 2; echo built\"\n" + step("unit") + step("lint") +
		"[[steps]]\nname = \"package\"\nneeds = [\"unit\", \"lint\"]\nrun = \"exit 1\"\n[[steps]]\nname = \"publish\"\nrun = \"echo never\"\n"
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": wf})
	p.git("push", s.gitURL("graph", adminToken), "main")
	run := waitStatus(t, s, "graph", forge.RunRunning)

	tab := b.tab(false)
	signIn(t, tab, s, adminToken)
	do(t, tab, chromedp.Navigate(s.URL+"/ui/repos/graph/runs/"+run.ID))
	waitPage(t, tab, "the run page", `document.getElementById("run") && document.getElementById("run").dataset.ready === "true"`)
	if got := eval[int](t, tab, `document.querySelectorAll("li.step").length`); got != 5 {
		t.Errorf("the running run's page lists %d steps, want every planned one (5)", got)
	}
	waitPage(t, tab, "the run to end", `document.getElementById("run").dataset.status === "failed"`)
	final := s.waitRun("graph", run.ID, time.Minute)
	if st := stepsByName(t, final); !overlap(st["unit"], st["lint"]) {
		t.Errorf("unit and lint did not overlap: %+v", final.Result.Steps)
	}
	nodes := eval[[]string](t, tab, `[...document.querySelectorAll(".graph a.node")].map(a => a.dataset.node + "=" + a.querySelector(".word").textContent)`)
	want := "ci.build=success ci.unit=success ci.lint=success ci.package=failed ci.publish=skipped"
	if got := strings.Join(nodes, " "); !sameWords(got, want) {
		t.Errorf("graph nodes %q, want %q", got, want)
	}
	for i, name := range map[int]string{1: "unit", 2: "lint"} {
		sel := fmt.Sprintf(`li.step[data-step="%d"]`, i)
		waitPage(t, tab, name+"'s lines", `document.querySelectorAll('`+sel+` .l').length >= 40`)
		rows := eval[[]string](t, tab, `[...document.querySelectorAll('`+sel+` .l .t')].map(e => e.textContent)`)
		seen := map[string]bool{}
		for _, r := range rows {
			seen[r] = true
		}
		for j := range n {
			line := fmt.Sprintf("%s line %d", name, j)
			if !seen[line] {
				t.Errorf("%s's log on the page lacks %q (%d rows)", name, line, len(rows))
				break
			}
		}
		if len(rows) != n {
			t.Errorf("%s's log on the page has %d rows, want %d", name, len(rows), n)
		}
	}
	if got := eval[string](t, tab, `document.querySelector('li.step[data-step="4"]').dataset.status`); got != "skipped" {
		t.Errorf("publish on the page: %s", got)
	}
}

func sameWords(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	if len(x) != len(y) {
		return false
	}
	seen := map[string]int{}
	for _, w := range x {
		seen[w]++
	}
	for _, w := range y {
		if seen[w]--; seen[w] < 0 {
			return false
		}
	}
	return true
}
