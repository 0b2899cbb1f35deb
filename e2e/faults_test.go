package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
	"github.com/kod-forge/kod/sandbox/faultpoint"
)

// The fault suite: for every point of a run's lifecycle (faultpoint.All)
// and each of three faults (a cancel through the REST API, kill -9 of the
// server then a restart, the container engine failing the next call), a
// server built with the kodfaults tag is stopped at that point, the fault
// is applied, and then: the run record is final and truthful (status, the
// step, a reason), the run's log ends with that reason, no container,
// volume or network of the run is left within 30 s, and the next run of
// the same branch completes. The periodic sweep must never have anything
// to remove: a leak only it caught fails the suite.

var (
	faultBinOnce sync.Once
	faultBin     string
	faultBinErr  error
)

// faultKod builds kod with the kodfaults tag once.
func faultKod(t *testing.T) string {
	t.Helper()
	faultBinOnce.Do(func() {
		faultBin = filepath.Join(filepath.Dir(kodBin), "kod-faults")
		build := exec.Command("go", "build", "-race", "-tags", "kodfaults", "-o", faultBin, "../cmd/kod")
		out, err := build.CombinedOutput()
		if err != nil {
			faultBinErr = fmt.Errorf("building kod with kodfaults: %v\n%s", err, out)
		}
	})
	if faultBinErr != nil {
		t.Fatal(faultBinErr)
	}
	return faultBin
}

// hit is one point reached by the server.
type hit struct {
	Point faultpoint.Point
	Run   string
	Step  string
	reply chan string // "go" or "fail"
}

// controller answers a fault-built server at every point: "go", except
// for the first hit of the armed point, which is handed to the test
// (pause) or failed at once (fail).
type controller struct {
	path string
	ln   net.Listener
	mu   sync.Mutex
	arm  faultpoint.Point
	fail bool
	hits chan *hit
}

func newController(t *testing.T) *controller {
	t.Helper()
	dir, err := os.MkdirTemp("", "kodfault")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &controller{path: filepath.Join(dir, "c.sock"), hits: make(chan *hit, 1)}
	c.ln, err = net.Listen("unix", c.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.ln.Close() })
	go c.serve()
	return c
}

func (c *controller) serve() {
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			return
		}
		go c.answer(conn)
	}
}

func (c *controller) answer(conn net.Conn) {
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		return
	}
	h := &hit{Point: faultpoint.Point(f[0]), Run: f[1], Step: f[2], reply: make(chan string, 1)}
	c.mu.Lock()
	mine := h.Point == c.arm
	fail := c.fail
	if mine {
		c.arm = ""
	}
	c.mu.Unlock()
	switch {
	case !mine:
		h.reply <- "go"
	case fail:
		h.reply <- "fail"
		c.hits <- h
	default:
		c.hits <- h
	}
	fmt.Fprintln(conn, <-h.reply)
}

// armAt makes the next hit of p a pause (fail false) or a failure.
func (c *controller) armAt(p faultpoint.Point, fail bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.arm, c.fail = p, fail
}

func (c *controller) wait(t *testing.T, p faultpoint.Point) *hit {
	t.Helper()
	select {
	case h := <-c.hits:
		return h
	case <-time.After(90 * time.Second):
		t.Fatalf("the server never reached %s", p)
		return nil
	}
}

type fault string

const (
	faultCancel fault = "cancel"
	faultKill   fault = "kill -9 + restart"
	faultEngine fault = "engine fails next call"
)

// outcome is what a case must end with.
type outcome struct {
	status   []forge.RunStatus // allowed final statuses
	reason   string            // the run's (or its failed step's) reason contains this
	stepErr  string            // the step "build" is recorded with an error containing this
	stepOK   bool              // the step "build" is recorded as succeeded
	noStep   bool              // no step is recorded
	cleanSec float64           // measured: fault to no object, seconds
}

const (
	cancelled    = "the run was cancelled"
	restarted    = "the server restarted while the run was running"
	stepRestart  = "the server restarted while the step was running"
	engineReason = "container engine unavailable"
)

var (
	wantCancelled = []forge.RunStatus{forge.RunCancelled}
	wantFailed    = []forge.RunStatus{forge.RunFailed}
	wantCompleted = []forge.RunStatus{forge.RunCompleted}
)

// expect returns what a fault at p must end with.
func expect(f fault, p faultpoint.Point) outcome {
	switch f {
	case faultCancel:
		switch p {
		case faultpoint.Queued, faultpoint.Dispatched, faultpoint.Setup, faultpoint.Workspace:
			return outcome{status: wantCancelled, reason: cancelled, noStep: true}
		case faultpoint.StepCreate, faultpoint.StepStart, faultpoint.StepRunning:
			return outcome{status: wantCancelled, reason: cancelled, stepErr: cancelled}
		case faultpoint.StepExit, faultpoint.OutputDrained, faultpoint.RecordStored:
			return outcome{status: wantCancelled, reason: cancelled, stepOK: true}
		case faultpoint.StepCleanup:
			// The step's removal runs beside the run's end: the cancel
			// lands before or after the run's final state.
			return outcome{status: []forge.RunStatus{forge.RunCancelled, forge.RunCompleted}, stepOK: true}
		default: // RunCleanup: the run is final already; the cancel is 409
			return outcome{status: wantCompleted, stepOK: true}
		}
	case faultKill:
		switch p {
		case faultpoint.Queued:
			return outcome{status: wantCompleted, stepOK: true} // still queued: it runs after the restart
		case faultpoint.Dispatched, faultpoint.Setup, faultpoint.Workspace:
			return outcome{status: wantFailed, reason: restarted, noStep: true}
		case faultpoint.StepCreate, faultpoint.StepStart, faultpoint.StepRunning, faultpoint.StepExit, faultpoint.OutputDrained:
			return outcome{status: wantFailed, reason: restarted, stepErr: stepRestart}
		case faultpoint.RecordStored:
			return outcome{status: wantFailed, reason: restarted, stepOK: true}
		case faultpoint.StepCleanup:
			// The removal starts as the step ends, beside the storing of
			// its result: the record has the result, or says the restart
			// cut the step short.
			return outcome{status: []forge.RunStatus{forge.RunFailed, forge.RunCompleted}, stepOK: true, stepErr: stepRestart}
		default:
			return outcome{status: wantCompleted, stepOK: true}
		}
	default:
		switch p {
		case faultpoint.Queued, faultpoint.Dispatched, faultpoint.Setup, faultpoint.Workspace:
			return outcome{status: wantFailed, reason: engineReason, noStep: true}
		case faultpoint.StepCreate, faultpoint.StepStart, faultpoint.StepRunning, faultpoint.StepExit:
			return outcome{status: wantFailed, reason: engineReason, stepErr: engineReason}
		default: // a removal fails once: tried again, nothing else changes
			return outcome{status: wantCompleted, stepOK: true}
		}
	}
}

const faultWorkflow = `[on]
push = []
[[steps]]
name = "build"
run = "echo step-output-$KOD_BRANCH"
`

// faultServer starts a fault-built server with a repository "f" holding
// one branch per point.
func faultServer(t *testing.T) (*server, *controller) {
	t.Helper()
	bin := faultKod(t)
	c := newController(t)
	dockertest.Require(t)
	s := &server{t: t, Home: t.TempDir(), env: []string{faultpoint.SocketEnv + "=" + c.path}, bin: bin}
	s.start()
	t.Cleanup(s.Stop)
	s.createRepo("f")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": faultWorkflow})
	for _, pt := range faultpoint.All {
		p.git("branch", string(pt))
	}
	p.git("push", "-q", s.gitURL("f", adminToken), "refs/heads/*:refs/heads/*")
	return s, c
}

func (s *server) trigger(branch string) string {
	s.t.Helper()
	var out struct{ ID string }
	s.mustDo("POST", "/repos/f/workflows", adminToken, map[string]string{"branch": branch}, http.StatusAccepted, &out)
	return out.ID
}

// results collects the measured time to clean of every case for the table.
var (
	resultsMu sync.Mutex
	results   = map[string]map[faultpoint.Point]string{}
)

func record(f fault, p faultpoint.Point, v string) {
	resultsMu.Lock()
	defer resultsMu.Unlock()
	if results[string(f)] == nil {
		results[string(f)] = map[faultpoint.Point]string{}
	}
	results[string(f)][p] = v
}

// TestFaultsAtEveryPoint runs the points x faults table, one server per
// fault, the points one after the other on their own branch.
func TestFaultsAtEveryPoint(t *testing.T) {
	t.Parallel()
	for _, f := range []fault{faultCancel, faultKill, faultEngine} {
		t.Run(strings.Fields(string(f))[0], func(t *testing.T) {
			t.Parallel()
			s, c := faultServer(t)
			for _, p := range faultpoint.All {
				if !t.Run(string(p), func(t *testing.T) { faultCase(t, s, c, f, p) }) {
					t.Logf("server log:\n%s", s.Logs())
				}
				s.t = t
			}
			if strings.Contains(s.Logs(), "swept leftover objects") {
				t.Errorf("the periodic sweep removed objects a run's own clean-up had left:\n%s", s.Logs())
			}
			if strings.Contains(s.Logs(), "DATA RACE") {
				t.Errorf("the server hit a data race:\n%s", s.Logs())
			}
		})
	}
	t.Cleanup(func() {
		resultsMu.Lock()
		defer resultsMu.Unlock()
		var b strings.Builder
		b.WriteString("\n| point | " + string(faultCancel) + " | " + string(faultKill) + " | " + string(faultEngine) + " |\n|---|---|---|---|\n")
		for _, p := range faultpoint.All {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", p, results[string(faultCancel)][p], results[string(faultKill)][p], results[string(faultEngine)][p])
		}
		t.Log(b.String())
	})
}

func faultCase(t *testing.T, s *server, c *controller, f fault, p faultpoint.Point) {
	s.t = t
	branch := string(p)
	want := expect(f, p)
	c.armAt(p, f == faultEngine)
	id := s.trigger(branch)
	h := c.wait(t, p)
	if h.Run != id {
		t.Fatalf("point %s reached by run %s, want %s", p, h.Run, id)
	}
	var applied time.Time
	switch f {
	case faultCancel:
		status, body := s.do("POST", "/repos/f/workflows/"+id+"/cancel", adminToken, nil)
		if status != http.StatusAccepted && status != http.StatusConflict {
			t.Errorf("cancel: %d %s", status, body)
		}
		if status == http.StatusConflict {
			want.status = wantCompleted
		}
		applied = time.Now()
		h.reply <- "go"
	case faultKill:
		s.Kill()
		h.reply <- "go" // nobody listens any more
		s.Restart()
		// The clean-up can only begin once a server runs again: the 30 s
		// count from the restart (a race-built server starts slowly on a
		// loaded machine).
		applied = time.Now()
	default:
		applied = time.Now()
	}
	final := s.waitRun("f", id, 90*time.Second)
	checkRecord(t, final, want)
	checkLogEnd(t, s, final)
	left := dockertest.RunLeftovers(t, s.Instance, id)
	for len(left) > 0 {
		if time.Since(applied) > 30*time.Second {
			t.Errorf("objects of run %s left 30 s after the fault: %v", id, left)
			break
		}
		time.Sleep(100 * time.Millisecond)
		left = dockertest.RunLeftovers(t, s.Instance, id)
	}
	took := time.Since(applied)
	record(f, p, fmt.Sprintf("%s, %.1f s", final.Status, took.Seconds()))
	t.Logf("%s at %s: %s %q, clean after %s", f, p, final.Status, final.Error, took.Round(10*time.Millisecond))

	// The branch still works.
	next := s.waitRun("f", s.trigger(branch), 90*time.Second)
	if next.Status != forge.RunCompleted || len(next.Result.Steps) != 1 || !strings.Contains(next.Result.Steps[0].Output, "step-output-"+branch) {
		t.Errorf("next run of %s: %s %q %+v", branch, next.Status, next.Error, next.Result)
	}
	// Its clean-up (which passes the points too) is over before the next
	// case arms a point.
	deadline := time.Now().Add(30 * time.Second)
	for left := dockertest.RunLeftovers(t, s.Instance, next.ID); len(left) > 0; left = dockertest.RunLeftovers(t, s.Instance, next.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("objects of the next run %s left: %v", next.ID, left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func checkRecord(t *testing.T, run forge.Run, want outcome) {
	t.Helper()
	ok := false
	for _, st := range want.status {
		ok = ok || run.Status == st
	}
	if !ok {
		t.Fatalf("status %s (%q), want one of %v; steps %+v", run.Status, run.Error, want.status, run.Result)
	}
	if run.CurrentStep != nil || run.CompletedAt == 0 || run.Result == nil {
		t.Errorf("final record incomplete: current %+v completedAt %d result %v", run.CurrentStep, run.CompletedAt, run.Result)
		return
	}
	steps := run.Result.Steps
	reason := run.Error
	for _, st := range steps {
		if !st.Success && reason == "" {
			reason = st.Error
		}
	}
	if want.reason != "" && !strings.Contains(reason, want.reason) {
		t.Errorf("reason %q, want it to say %q", reason, want.reason)
	}
	if run.Status == forge.RunCompleted && (run.Error != "" || !run.Result.Success) {
		t.Errorf("completed run with error %q success %v", run.Error, run.Result.Success)
	}
	switch {
	case want.noStep:
		// Planned steps are listed from the start; none of them ran.
		for _, st := range steps {
			if st.StartedAt != 0 || st.Success && !st.Skipped || st.Status == forge.StepCompleted {
				t.Errorf("a step ran in a run that never got to one: %+v", steps)
			}
		}
	case len(steps) != 1 || steps[0].Name != "build":
		t.Errorf("steps %+v, want the one step build", steps)
	case steps[0].Success && !strings.Contains(steps[0].Output, "step-output-"):
		t.Errorf("step build succeeded without its output: %+v", steps[0])
	default:
		ok := want.stepOK && steps[0].Success
		failedAsSaid := want.stepErr != "" && !steps[0].Success && strings.Contains(steps[0].Error, want.stepErr)
		if !ok && !failedAsSaid {
			t.Errorf("step build: success %v error %q; want success %v or an error saying %q", steps[0].Success, steps[0].Error, want.stepOK, want.stepErr)
		}
	}
}

// checkLogEnd: a run that did not complete ends its log with its reason; a
// completed one with its step's output.
func checkLogEnd(t *testing.T, s *server, run forge.Run) {
	t.Helper()
	log := strings.TrimRight(s.logs("f", run.ID), "\n")
	lines := strings.Split(log, "\n")
	last := lines[len(lines)-1]
	if run.Status == forge.RunCompleted {
		if !strings.HasPrefix(last, "step-output-") {
			t.Errorf("log of a completed run ends with %q:\n%s", last, log)
		}
		return
	}
	if !strings.HasPrefix(last, "==> run "+string(run.Status)+": ") {
		t.Errorf("log ends with %q, want the run's reason:\n%s", last, log)
	}
}
