package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
)

// twoFiles serves two workflow files, each with a step named "test".
type twoFiles struct{}

func (twoFiles) WorkflowFiles(context.Context, string, string) ([]runner.File, error) {
	const diamond = `
[[steps]]
name = "build"
run = "true"
[[steps]]
name = "unit"
run = "true"
[[steps]]
name = "lint"
needs = ["build"]
run = "true"
[[steps]]
name = "test"
needs = ["unit", "lint"]
run = "true"
[[steps]]
name = "publish"
run = "true"
`
	return []runner.File{
		{Path: ".kod/workflows/a.toml", Data: []byte(diamond)},
		{Path: ".kod/workflows/b.toml", Data: []byte("[[steps]]\nname = \"test\"\nrun = \"true\"\n")},
	}, nil
}

func (twoFiles) Archive(context.Context, string, string, io.Writer) error { return nil }

// TestLogsOfParallelSteps: ?step takes an id or a name (a name two steps
// have is 400 naming their ids); the plain log is in plan order with the
// skipped step's reason, naming the workflow of a step whose name another
// step has; ?follow=true prefixes the lines of steps running
// at once, and SSE events carry step ids, with no line lost.
func TestLogsOfParallelSteps(t *testing.T) {
	t.Parallel()
	const n = 200
	gate := make(chan struct{})
	play := func(ctx context.Context, st *sandbox.StepSpec, out io.Writer) int {
		switch st.Name {
		case "unit", "lint":
			for i := range n {
				if i == n/2 {
					<-gate // both have printed half while both run
				}
				fmt.Fprintf(out, "%s %d\n", st.Name, i)
			}
		case "test":
			if strings.Contains(strings.Join(st.Env, " "), "KOD_WORKFLOW=.kod/workflows/a.toml") {
				fmt.Fprint(out, "tests failed\n")
				return 1
			}
			fmt.Fprint(out, "b tested\n")
		}
		return 0
	}
	srv, r, _, store := logEnvFile(t, twoFiles{}, play)
	run, err := r.Enqueue(context.Background(), runner.Request{Repo: "app", Branch: "main", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
	if err != nil {
		t.Fatal(err)
	}
	base := "/repos/app/workflows/" + run.ID + "/logs"
	plain := logRequest(t, srv, base+"?follow=true")
	sse := logRequest(t, srv, base, "Accept", "text/event-stream")
	lines := map[string]int{}
	ids := map[string]bool{}
	var all []sseEvent
	sseDone := make(chan struct{})
	go func() {
		defer close(sseDone)
		readEvents(t, sse.Body, func(ev sseEvent) {
			all = append(all, ev)
			if ev.Name == "line" {
				step, _ := ev.Data["step"].(string)
				lines[step]++
				id, _ := ev.Data["id"].(string)
				ids[id] = true
			}
		})
	}()
	// Wait until both parallel steps run, then let them go on.
	for {
		got, err := store.GetRun(context.Background(), run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Result != nil && len(got.Result.Steps) == 6 && got.Result.Steps[1].Status == forge.StepRunning && got.Result.Steps[2].Status == forge.StepRunning {
			break
		}
	}
	close(gate)
	body, err := io.ReadAll(plain.Body)
	if err != nil {
		t.Fatal(err)
	}
	<-sseDone
	followed := string(body)
	prefixed := 0
	for _, step := range []string{"unit", "lint"} {
		// Each line once: prefixed while both run, plain once one is alone.
		for i := range n {
			line := fmt.Sprintf("%s %d\n", step, i)
			p := strings.Count(followed, "\n["+step+"] "+line)
			prefixed += p
			if got := p + strings.Count(followed, "\n"+line); got != 1 {
				t.Errorf("followed %q %d times", line, got)
			}
		}
		if lines[step] != n {
			t.Errorf("SSE: %d lines of %s, want %d", lines[step], step, n)
		}
	}
	if prefixed < n/2 {
		t.Errorf("%d prefixed lines; both steps printed half their lines while both ran:\n%s", prefixed, followed)
	}
	for _, id := range []string{"a.unit", "a.lint"} {
		if !ids[id] {
			t.Errorf("SSE line events without step id %s: %v", id, ids)
		}
	}

	// Resuming from an id taken while both steps ran (a cursor with both
	// positions) gives each step's remaining lines, none twice, none lost.
	cut := -1
	for i, ev := range all {
		if ev.Name == "line" && strings.Contains(ev.ID, ",") && i > len(all)/3 {
			cut = i
			break
		}
	}
	if cut < 0 {
		t.Fatalf("no SSE id named two steps while both ran")
	}
	stepLines := func(evs []sseEvent) map[string][]string {
		m := map[string][]string{}
		for _, ev := range evs {
			if ev.Name == "line" {
				step, _ := ev.Data["id"].(string)
				line, _ := ev.Data["line"].(string)
				m[step] = append(m[step], line)
			}
		}
		return m
	}
	before, every := stepLines(all[:cut+1]), stepLines(all)
	var resumed []sseEvent
	readEvents(t, logRequest(t, srv, base, "Accept", "text/event-stream", "Last-Event-ID", all[cut].ID).Body, func(ev sseEvent) { resumed = append(resumed, ev) })
	after := stepLines(resumed)
	for step, lines := range every {
		got := append(append([]string{}, before[step]...), after[step]...)
		if strings.Join(got, "|") != strings.Join(lines, "|") {
			t.Errorf("step %s resumed after %q: %d lines before and %d after, want %d in order", step, all[cut].ID, len(before[step]), len(after[step]), len(lines))
		}
	}
	t.Logf("resumed after %q: %d events then %d", all[cut].ID, cut+1, len(resumed))

	whole := readAll(t, logRequest(t, srv, base))
	var headers []string
	for _, line := range strings.Split(whole, "\n") {
		if strings.HasPrefix(line, "==> ") {
			headers = append(headers, line)
		}
	}
	// "test" is a step of both files: its headers, and the run's failure
	// reason, name the workflow.
	want := []string{"==> build", "==> unit", "==> lint", "==> test (.kod/workflows/a.toml)", "==> publish (skipped: needs 'test', which failed)",
		"==> test (.kod/workflows/b.toml)", "==> run failed: step test (.kod/workflows/a.toml): step failed with exit code 1"}
	if strings.Join(headers, "|") != strings.Join(want, "|") {
		t.Errorf("plain log headers %q, want %q", headers, want)
	}
	if strings.Count(followed, "==> test (.kod/workflows/") != 2 {
		t.Errorf("the followed log does not name the workflow of each step test:\n%s", followed)
	}
	if strings.Contains(whole, "[unit]") || !strings.Contains(whole, "==> unit\nunit 0\nunit 1\n") {
		t.Errorf("the plain log of a finished run has each step whole, without prefixes:\n%s", whole)
	}

	if got := readAll(t, logRequest(t, srv, base+"?step=b.test")); got != "b tested\n" {
		t.Errorf("?step=b.test: %q", got)
	}
	if got := readAll(t, logRequest(t, srv, base+"?step=lint")); !strings.HasPrefix(got, "lint 0\n") || strings.Count(got, "\n") != n {
		t.Errorf("?step=lint: %d lines", strings.Count(got, "\n"))
	}
	res := logRequest(t, srv, base+"?step=test")
	if msg := readAll(t, res); res.StatusCode != http.StatusBadRequest || !strings.Contains(msg, "a.test") || !strings.Contains(msg, "b.test") {
		t.Errorf("?step=test (two steps): %d %s", res.StatusCode, msg)
	}
	if res := logRequest(t, srv, base+"?step=nope"); res.StatusCode != http.StatusNotFound {
		t.Errorf("?step=nope: %d", res.StatusCode)
	}
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
