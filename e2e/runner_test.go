package e2e

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// stream opens GET path with extra headers and returns the response.
func (s *server) stream(path string, header ...string) *http.Response {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(res.Body)
		s.t.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
	return res
}

// onlyRun waits (up to a minute, to catch hangs) for repo to have exactly
// one run and returns it.
func (s *server) onlyRun(repo string) forge.Run {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		runs := s.runs(repo)
		if len(runs) == 1 {
			return runs[0]
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: want 1 run, got %d", repo, len(runs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitLog polls the run's full log until it contains want.
func (s *server) waitLog(repo, id, want string) {
	s.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.logs(repo, id), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("log of %s never showed %q:\n%s", id, want, s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type timedLine struct {
	text string
	at   time.Time
}

// TestFollowLogsLive: a follower (chunked text) started before the step
// prints gets each line as it is printed, in order, and its stream ends
// when the run ends; an SSE client joining mid-step gets the backlog, then
// the live lines, then an end event.
func TestFollowLogsLive(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("live")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "slow printer"
run = "echo one; sleep 2; echo two; sleep 2; printf 'three, no newline'"
[[steps]]
name = "after"
run = "echo done"
`})
	p.git("push", "-q", s.gitURL("live", adminToken), "main")
	run := s.onlyRun("live")
	base := "/repos/live/workflows/" + run.ID + "/logs"
	plain := s.stream(base + "?follow=true")
	var lines []timedLine
	read := make(chan error, 1)
	go func() {
		br := bufio.NewReader(plain.Body)
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				lines = append(lines, timedLine{line, time.Now()})
			}
			if err != nil {
				if err == io.EOF {
					err = nil
				}
				read <- err
				return
			}
		}
	}()

	s.waitLog("live", run.ID, "one")
	sse := s.stream(base, "Accept", "text/event-stream")
	var events []string
	sr := bufio.NewScanner(sse.Body)
	for sr.Scan() {
		if data, ok := strings.CutPrefix(sr.Text(), "data: "); ok {
			var d map[string]any
			if err := json.Unmarshal([]byte(data), &d); err != nil {
				t.Fatal(err)
			}
			switch {
			case d["line"] != nil:
				events = append(events, fmt.Sprintf("%v: %v", d["step"], d["line"]))
			case d["status"] != nil:
				events = append(events, fmt.Sprintf("end %v", d["status"]))
			default:
				events = append(events, fmt.Sprintf("step %v", d["step"]))
			}
		}
	}
	final := s.waitRun("live", run.ID, time.Minute)
	select {
	case err := <-read:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the followed stream did not end with the run")
	}
	var text []string
	for _, l := range lines {
		text = append(text, l.text)
	}
	want := []string{"==> slow printer\n", "one\n", "two\n", "three, no newline\n", "==> after\n", "done\n"}
	if strings.Join(text, "") != strings.Join(want, "") {
		t.Fatalf("followed:\n%q\nwant\n%q", text, want)
	}
	// Live, not at the end: "three" came about 2 s after "two" (the
	// follower may have joined after "one" was printed).
	if gap := lines[3].at.Sub(lines[2].at); gap < 1500*time.Millisecond {
		t.Errorf("line three arrived %s after line two; a live stream shows the 2 s sleep", gap)
	}
	wantEvents := []string{"step slow printer", "slow printer: one", "slow printer: two", "slow printer: three, no newline", "step after", "after: done", "end completed"}
	if strings.Join(events, "\n") != strings.Join(wantEvents, "\n") {
		t.Errorf("event stream joining mid-step:\n%s\nwant\n%s", strings.Join(events, "\n"), strings.Join(wantEvents, "\n"))
	}
	if final.Status != forge.RunCompleted || final.CurrentStep != nil {
		t.Errorf("run: %s current %+v", final.Status, final.CurrentStep)
	}
	assertNoLeftovers(t, s)
}

// TestCancelRunningStep: cancelling a run whose step traps SIGTERM shows
// the trap's output, ends cancelled by the trap's own exit (not a SIGKILL
// after the grace), runs no later step and leaves nothing behind.
func TestCancelRunningStep(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil, "--stop-grace", "2m")
	s.createRepo("cancel")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "waits"
run = "trap 'echo bye; exit 3' TERM; echo started; sleep 300"
[[steps]]
name = "later"
run = "echo should-not-run"
`})
	p.git("push", "-q", s.gitURL("cancel", adminToken), "main")
	run := s.onlyRun("cancel")
	s.waitLog("cancel", run.ID, "started")
	var current forge.Run
	s.mustDo("GET", "/repos/cancel/workflows/"+run.ID, adminToken, nil, http.StatusOK, &current)
	if current.CurrentStep == nil || current.CurrentStep.Name != "waits" {
		t.Errorf("current step of the running run: %+v", current.CurrentStep)
	}
	asked := time.Now()
	s.mustDo("POST", "/repos/cancel/workflows/"+run.ID+"/cancel", adminToken, nil, http.StatusAccepted, nil)
	final := s.waitRun("cancel", run.ID, 5*time.Minute)
	took := time.Since(asked)
	if final.Status != forge.RunCancelled {
		t.Fatalf("status %s, want cancelled", final.Status)
	}
	steps := final.Result.Steps
	if len(steps) != 2 || !strings.Contains(steps[0].Output, "bye") || steps[1].StartedAt != 0 || steps[1].Status != forge.StepCancelled {
		t.Fatalf("steps after cancel (the later one listed, never run): %+v", steps)
	}
	// The trap's exit status, not 137: SIGTERM reached the step, which ended
	// on its own well before the 2 minute grace ran out.
	if steps[0].ExitCode == nil || *steps[0].ExitCode != 3 {
		t.Errorf("cancelled step's exit code %v, want the trap's 3", steps[0].ExitCode)
	}
	t.Logf("cancelled in %s; step: %q %q", took.Round(time.Millisecond), steps[0].Output, steps[0].Error)
	if status, _ := s.do("POST", "/repos/cancel/workflows/"+run.ID+"/cancel", adminToken, nil); status != http.StatusConflict {
		t.Errorf("cancelling a finished run: %d, want 409", status)
	}
	assertNoLeftovers(t, s)
}

// TestKillDuringStepThenRestart: kill -9 of the server mid-step leaves the
// step's container running; after a restart the run is failed with the
// restart reason and every object of it is removed.
func TestKillDuringStepThenRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("crash")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "long"
run = "echo started; sleep 300"
`})
	p.git("push", "-q", s.gitURL("crash", adminToken), "main")
	run := s.onlyRun("crash")
	s.waitLog("crash", run.ID, "started")
	s.Kill()
	if left := dockertest.Leftovers(t, s.Instance); len(left) == 0 {
		t.Fatal("the killed server left no container: the test would prove nothing")
	}
	restarted := time.Now()
	s.Restart()
	final := s.waitRun("crash", run.ID, 2*time.Minute)
	if final.Status != forge.RunFailed || !strings.Contains(final.Error, "restarted") {
		t.Fatalf("run after kill -9 and restart: %s %q", final.Status, final.Error)
	}
	steps := final.Result.Steps
	if len(steps) != 1 || steps[0].Name != "long" || !strings.Contains(steps[0].Output, "started") || !strings.Contains(steps[0].Error, "restarted") {
		t.Errorf("interrupted step: %+v", steps)
	}
	assertNoLeftovers(t, s)
	t.Logf("failed and cleaned %s after the restart began", time.Since(restarted).Round(time.Millisecond))
}

// TestConcurrentPushesQueue: 5 pushes at once with a limit of 2 run at
// most 2 at a time (measured from the runs' startedAt/completedAt), and
// all complete.
func TestConcurrentPushesQueue(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil, "--max-concurrent-runs", "2")
	s.createRepo("busy")
	const n = 5
	var wg sync.WaitGroup
	for i := range n {
		branch := fmt.Sprintf("b%d", i)
		p := newProject(t, branch, map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"work\"\nrun = \"echo " + branch + "; sleep 6\"\n"})
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := p.gitErr("push", "-q", s.gitURL("busy", adminToken), branch); err != nil {
				t.Errorf("push %s: %v\n%s", branch, err, out)
			}
		}()
	}
	wg.Wait()
	runs := s.runs("busy")
	if len(runs) != n {
		t.Fatalf("%d runs for %d pushes", len(runs), n)
	}
	type span struct{ start, end forge.Millis }
	var spans []span
	for _, r := range runs {
		final := s.waitRun("busy", r.ID, 2*time.Minute)
		if final.Status != forge.RunCompleted {
			t.Errorf("run %s on %s: %s %q", r.ID, r.Branch, final.Status, final.Error)
		}
		spans = append(spans, span{final.StartedAt, final.CompletedAt})
	}
	// Sweep the start and end times: the most runs running at one instant.
	type edge struct {
		at    forge.Millis
		delta int
	}
	var edges []edge
	for _, sp := range spans {
		edges = append(edges, edge{sp.start, 1}, edge{sp.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at != edges[j].at {
			return edges[i].at < edges[j].at
		}
		return edges[i].delta < edges[j].delta // an end before a start at the same ms
	})
	running, peak := 0, 0
	for _, e := range edges {
		running += e.delta
		peak = max(peak, running)
	}
	if peak != 2 {
		t.Errorf("at most %d runs ran at once, want exactly 2 (limit 2, 5 runs)", peak)
	}
	assertNoLeftovers(t, s)
}

// TestScheduledRunOnDefaultBranch: `[on] schedule` runs the workflow on
// the default branch with trigger schedule; `push = []` turns pushes off.
func TestScheduledRunOnDefaultBranch(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_SCHEDULE_MIN_INTERVAL=1s"}) // users get 1m at least
	s.createRepo("cron")
	p := newProject(t, "main", map[string]string{".kod/workflows/nightly.toml": `
[on]
push = []
schedule = ["@every 2s"]
[[steps]]
name = "nightly"
run = "echo scheduled on $KOD_BRANCH"
`})
	out := p.git("push", s.gitURL("cron", adminToken), "main")
	if strings.Contains(out, "queued workflow run") {
		t.Errorf("push = [] still queued a run:\n%s", out)
	}
	// The schedule fires every 2 s: take the first run once there is one.
	var runs []forge.Run
	for deadline := time.Now().Add(time.Minute); len(runs) == 0; runs = s.runs("cron") {
		if time.Now().After(deadline) {
			t.Fatal("no scheduled run within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	run := slices.MinFunc(runs, func(a, b forge.Run) int { return cmp.Compare(a.CreatedAt, b.CreatedAt) })
	if run.Trigger != forge.TriggerSchedule || run.Branch != "main" {
		t.Fatalf("run: %+v", run)
	}
	final := s.waitRun("cron", run.ID, time.Minute)
	if final.Status != forge.RunCompleted || final.Result.Steps[0].Output != "scheduled on main\n" {
		t.Errorf("scheduled run: %s %+v", final.Status, final.Result)
	}
	s.mustDo("DELETE", "/repos/cron", adminToken, nil, http.StatusNoContent, nil)
	time.Sleep(3 * time.Second)
	if strings.Contains(s.Logs(), "level=ERROR") {
		t.Errorf("errors after deleting a scheduled repository:\n%s", s.Logs())
	}
	assertNoLeftovers(t, s)
}

// TestEventStreamOddOutput: a 10 MB line, "\r" progress output, invalid
// UTF-8 and a last line without newline reach an SSE client intact (long
// lines in pieces), and the plain log keeps the bytes as printed. The step
// stays quiet a while after its last line, so that line goes out as a
// partial piece first and the step's end must still end it.
func TestEventStreamOddOutput(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("odd")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `
[[steps]]
name = "odd"
run = "head -c 10000000 /dev/zero | tr '\\0' x; echo; printf '10%%\\r20%%\\r\\n\\377\\376 bad\\nend'; sleep 3"
`})
	p.git("push", "-q", s.gitURL("odd", adminToken), "main")
	run := s.onlyRun("odd")
	sse := s.stream("/repos/odd/workflows/"+run.ID+"/logs", "Accept", "text/event-stream")
	var lines []string
	var cur strings.Builder
	pieces := 0
	sc := bufio.NewScanner(sse.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var d struct {
			Line    *string
			Partial bool
			CR      bool
		}
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			t.Fatal(err)
		}
		if d.Line == nil {
			continue
		}
		cur.WriteString(*d.Line)
		pieces++
		if !d.Partial {
			line := cur.String()
			if d.CR {
				line += " (cr)"
			}
			lines = append(lines, line)
			cur.Reset()
		}
	}
	want := []string{strings.Repeat("x", 10_000_000), "10% (cr)", "20%", "\ufffd\ufffd bad", "end"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %.200q", len(lines), lines)
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d: %.80q (%d bytes), want %.80q", i, lines[i], len(lines[i]), want[i])
		}
	}
	if pieces < 300 {
		t.Errorf("the 10 MB line came in %d events, want it split", pieces)
	}
	final := s.waitRun("odd", run.ID, time.Minute)
	plain := s.logs("odd", run.ID)
	if final.Status != forge.RunCompleted || !strings.HasSuffix(plain, "x\n10%\r20%\r\n\xff\xfe bad\nend") {
		t.Errorf("run %s; plain log ends %q", final.Status, plain[max(0, len(plain)-40):])
	}
	assertNoLeftovers(t, s)
}
