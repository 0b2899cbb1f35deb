package e2e

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// Services, on the real engine with kod/db:local (scripts/build-images), a
// stand-in database built offline.

const serviceWorkflow = `
[[services]]
name = "db"
image = "kod/db:local"
pull = "never"
env = { DB_DELAY = "3", DB_NAME = "app" }
ready = "kod-db-ready"

[[steps]]
name = "query"
run = "for i in $(seq 50); do r=$(nc db 5432 </dev/null) && [ -n \"$r\" ] && { echo \"db says: $r\"; exit 0; }; sleep 0.2; done; exit 1"
`

const brokenServiceWorkflow = `
[[services]]
name = "db"
image = "kod/db:local"
pull = "never"
env = { DB_FAIL = "bad setting on line 3" }
ready = "kod-db-ready"

[[steps]]
name = "query"
run = "echo never"
`

const slowServiceWorkflow = `
[[services]]
name = "db"
image = "kod/db:local"
pull = "never"
ready = "kod-db-ready"

[[steps]]
name = "wait"
run = "echo waiting; sleep 300"
`

// serviceStep returns the pseudo-step of service name in run.
func serviceStep(run forge.Run, name string) (forge.StepResult, bool) {
	for _, st := range run.Result.Steps {
		if st.Name == "service: "+name {
			return st, true
		}
	}
	return forge.StepResult{}, false
}

// TestServices: a step reaches the service by its name, only once the
// service's ready command succeeded (3 s after it started); the service's
// output is a pseudo-step of the record and the logs. A service that exits
// at once fails the workflow before any step, with its lines in the error.
// Nothing is left after success, failure, cancel, and a kill -9 and
// restart during a run.
func TestServices(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("svc")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": serviceWorkflow})
	p.git("push", "-q", s.gitURL("svc", adminToken), "main")
	run := s.waitRun("svc", s.onlyRun("svc").ID, 3*time.Minute)
	if run.Status != forge.RunCompleted {
		t.Fatalf("service run: %s %q %+v", run.Status, run.Error, run.Result)
	}
	st := stepsByName(t, run)
	if !strings.Contains(st["query"].Output, "db says: pong app") {
		t.Errorf("query output %q", st["query"].Output)
	}
	db, ok := serviceStep(run, "db")
	if !ok || db.Status != forge.StepCompleted || !strings.Contains(db.Output, "kod-db: ready to accept connections") {
		t.Errorf("service pseudo-step: %+v", db)
	}
	if wait := st["query"].StartedAt - db.StartedAt; wait < 3000 {
		t.Errorf("the first step started %d ms after the service, before its 3 s delay", wait)
	} else {
		t.Logf("first step started %d ms after the service (DB_DELAY=3)", wait)
	}
	if logs := s.logs("svc", run.ID); !strings.Contains(logs, "==> service: db") || !strings.Contains(logs, "kod-db: starting") {
		t.Errorf("logs lack the service:\n%s", logs)
	}
	assertNoLeftovers(t, s)

	// A service that exits at once: no step runs, the error has its lines.
	p.commit("broken db", map[string]string{".kod/workflows/ci.toml": brokenServiceWorkflow})
	p.git("push", "-q", s.gitURL("svc", adminToken), "main")
	broken := s.waitRun("svc", newestRun(t, s, "svc", run.ID).ID, 3*time.Minute)
	if broken.Status != forge.RunFailed {
		t.Fatalf("broken service: %s", broken.Status)
	}
	q := stepsByName(t, broken)["query"]
	if q.StartedAt != 0 || !strings.Contains(q.Error, "service db exited with code 1") || !strings.Contains(q.Error, "kod-db: FATAL: bad setting on line 3") {
		t.Errorf("step of a workflow whose service failed: %+v", q)
	}
	if db, _ := serviceStep(broken, "db"); db.Status != forge.StepFailed || !strings.Contains(db.Output, "FATAL") {
		t.Errorf("failed service pseudo-step: %+v", db)
	}
	assertNoLeftovers(t, s)

	// Cancelled while a step runs beside the service.
	p.commit("slow", map[string]string{".kod/workflows/ci.toml": slowServiceWorkflow})
	p.git("push", "-q", s.gitURL("svc", adminToken), "main")
	slow := newestRun(t, s, "svc", broken.ID)
	waitStepRunning(t, s, "svc", slow.ID, "wait")
	s.mustDo("POST", "/repos/svc/workflows/"+slow.ID+"/cancel", adminToken, nil, http.StatusAccepted, nil)
	if r := s.waitRun("svc", slow.ID, 3*time.Minute); r.Status != forge.RunCancelled {
		t.Errorf("cancelled run: %s", r.Status)
	}
	assertNoLeftovers(t, s)

	// Killed while a step runs beside the service: the restarted server
	// sweeps the service with the run.
	var again struct{ ID string }
	s.mustDo("POST", "/repos/svc/workflows", adminToken, map[string]string{"branch": "main"}, http.StatusAccepted, &again)
	waitStepRunning(t, s, "svc", again.ID, "wait")
	s.Kill()
	s.Restart()
	if r := s.waitRun("svc", again.ID, 3*time.Minute); r.Status != forge.RunFailed {
		t.Errorf("run of a killed server: %s", r.Status)
	}
	assertNoLeftovers(t, s)
}

// newestRun waits for a run of repo other than the known ones and returns
// the newest.
func newestRun(t *testing.T, s *server, repo string, known ...string) forge.Run {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, r := range s.runs(repo) { // newest first
			if !slices.Contains(known, r.ID) {
				return r
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no new run", repo)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStepRunning waits until step name of run id is running.
func waitStepRunning(t *testing.T, s *server, repo, id, name string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute) // catches hangs only
	for {
		var run forge.Run
		s.mustDo("GET", "/repos/"+repo+"/workflows/"+id, adminToken, nil, http.StatusOK, &run)
		if run.Result != nil {
			for _, st := range run.Result.Steps {
				if st.Name == name && st.Status == forge.StepRunning {
					return
				}
			}
		}
		if run.Status.Done() || time.Now().After(deadline) {
			t.Fatalf("step %s of run %s never ran: %s %+v", name, id, run.Status, run.Result)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
