package kube

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kod-forge/kod/forge"
)

// TestWorkflowOnTheCluster: a push runs a 3-step workflow as pods; step 2
// reads the file step 1 wrote (one workspace, one node), its line streams
// live (a follower sees it while the step still runs), and the failing
// third step fails the run with its exit code.
func TestWorkflowOnTheCluster(t *testing.T) {
	s := startServer(t)
	pods := s.watchPods()
	s.push("three", "main", `
[[steps]]
name = "write"
run = "echo from-step-1 > shared.txt; echo wrote"

[[steps]]
name = "read"
run = "cat shared.txt; echo live-line; sleep 6; echo after-sleep"

[[steps]]
name = "fail"
run = "echo failing; exit 3"
`)
	run := s.onlyRun("three")
	res := s.stream("/repos/three/workflows/" + run.ID + "/logs?follow=true")
	sc := bufio.NewScanner(res.Body)
	sawLive := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "live-line") {
			sawLive = true
			break
		}
	}
	if !sawLive {
		t.Fatalf("the followed log ended without live-line:\n%s", s.Logs())
	}
	// The line arrived while its step was still running.
	cur := s.run("three", run.ID)
	if cur.Status.Done() || cur.CurrentStep == nil || cur.CurrentStep.Name != "read" {
		t.Fatalf("after live-line the run is %s at %+v; want step read still running", cur.Status, cur.CurrentStep)
	}
	done := s.waitRun("three", run.ID)
	if done.Status != forge.RunFailed || done.Result == nil || len(done.Result.Steps) != 3 {
		t.Fatalf("run = %s %+v; want failed with 3 steps", done.Status, done.Result)
	}
	steps := done.Result.Steps
	if !steps[0].Success || !steps[1].Success || !strings.Contains(steps[1].Output, "from-step-1") || !strings.Contains(steps[1].Output, "after-sleep") {
		t.Errorf("steps 1-2: %+v", steps[:2])
	}
	if steps[2].Success || steps[2].ExitCode == nil || *steps[2].ExitCode != 3 || !strings.Contains(steps[2].Output, "failing") {
		t.Errorf("step 3 = %+v; want exit code 3", steps[2])
	}
	byRun := pods.end()
	if nodes := byRun[run.ID]; len(nodes) != 1 {
		t.Errorf("the run's pods ran on %v; want one node", nodes)
	}
}

// stream opens a GET that stays open.
func (s *server) stream(path string) *http.Response {
	s.t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != http.StatusOK {
		s.t.Fatalf("GET %s: %d", path, res.StatusCode)
	}
	return res
}

// TestStepTimeoutAndCancelLeaveNoPod: a step over its timeout fails with
// the timeout error; cancelling a run mid-step leaves no pod behind.
func TestStepTimeoutAndCancelLeaveNoPod(t *testing.T) {
	s := startServer(t)
	s.push("slow", "main", `
[[steps]]
name = "sleeper"
timeout = 3
run = "echo sleeping; sleep 120"
`)
	run := s.onlyRun("slow")
	done := s.waitRun("slow", run.ID)
	if done.Status != forge.RunFailed || len(done.Result.Steps) != 1 || !strings.Contains(done.Result.Steps[0].Error, "step timed out after 3 s") {
		t.Fatalf("run = %s %+v; want the step's timeout", done.Status, done.Result)
	}
	if !strings.Contains(done.Result.Steps[0].Output, "sleeping") {
		t.Errorf("the timed-out step's output was lost: %q", done.Result.Steps[0].Output)
	}
	s.waitNoPods("after the timeout")

	s.push("cancel", "main", `
[[steps]]
name = "long"
run = "echo started; sleep 300"

[[steps]]
name = "never"
run = "echo must-not-run"
`)
	run = s.onlyRun("cancel")
	s.waitLog("cancel", run.ID, "started")
	if n := len(s.objects()["pod"]); n == 0 {
		t.Fatal("no pod while the step runs")
	}
	s.mustDo("POST", "/repos/cancel/workflows/"+run.ID+"/cancel", nil, http.StatusAccepted, nil)
	done = s.waitRun("cancel", run.ID)
	if done.Status != forge.RunCancelled {
		t.Fatalf("run = %s; want cancelled", done.Status)
	}
	s.waitNoPods("after cancel")
	if strings.Contains(s.logs("cancel", run.ID), "must-not-run") {
		t.Error("a step after the cancelled one ran")
	}
}

// TestMissingImageFailsFast: an image no node has, with pull policy never,
// fails its step at once with a clear error, not after a timeout.
func TestMissingImageFailsFast(t *testing.T) {
	s := startServer(t, "KOD_KUBE_PULL_TIMEOUT=10m")
	s.push("noimage", "main", `
[[steps]]
name = "ghost"
image = "kod/does-not-exist:1"
pull = "never"
run = "true"
`)
	run := s.onlyRun("noimage")
	done := s.waitRun("noimage", run.ID) // hang bound 3 min < the 10 min pull timeout
	if done.Status != forge.RunFailed || len(done.Result.Steps) != 1 {
		t.Fatalf("run = %s %+v", done.Status, done.Result)
	}
	if e := done.Result.Steps[0].Error; !strings.Contains(e, `image "kod/does-not-exist:1" is not present on node`) {
		t.Errorf("step error = %q; want the missing image named", e)
	}
}

// TestSecretsNeverInPodSpecs: a repository secret reaches the step's
// environment, and no pod spec of the run holds its value.
func TestSecretsNeverInPodSpecs(t *testing.T) {
	s := startServer(t)
	const value = "hunter2-kube-e2e-value"
	if status, data := s.do("POST", "/repos", map[string]string{"name": "secret"}); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, data)
	}
	s.mustDo("PUT", "/repos/secret/secrets/DEPLOY_TOKEN", map[string]string{"value": value}, http.StatusOK, nil)
	pods := s.watchPods()
	s.push("secret", "main", `
[[steps]]
name = "use"
run = "[ \"${DEPLOY_TOKEN#hunter2}\" = -kube-e2e-value ] && echo secret-ok; sleep 2"
`)
	run := s.onlyRun("secret")
	done := s.waitRun("secret", run.ID)
	if done.Status != forge.RunCompleted || !strings.Contains(done.Result.Steps[0].Output, "secret-ok") {
		t.Fatalf("run = %s %+v; want the secret in the environment", done.Status, done.Result)
	}
	pods.end()
	if len(pods.specs) == 0 {
		t.Fatal("saw no pod")
	}
	for _, p := range pods.specs {
		y, err := yaml.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(y), value) {
			t.Errorf("pod %s holds the secret's value:\n%s", p.Name, y)
		}
	}
}

// TestKilledServerIsSweptOnRestart: kod killed with SIGKILL mid-step
// leaves its pods, claim and Secret; the restarted server removes them all.
func TestKilledServerIsSweptOnRestart(t *testing.T) {
	s := startServer(t)
	s.push("crash", "main", `
[[steps]]
name = "long"
run = "echo started; sleep 300"
`)
	run := s.onlyRun("crash")
	s.waitLog("crash", run.ID, "started")
	s.Kill()
	left := s.objects()
	if len(left["pod"]) == 0 || len(left["claim"]) == 0 || len(left["secret"]) == 0 {
		t.Fatalf("after SIGKILL: %v; want the run's pod, claim and secret still there", left)
	}
	s.start()
	s.stopped = false
	s.assertNothingLeft()
	done := s.waitRun("crash", run.ID)
	if done.Status != forge.RunFailed {
		t.Errorf("interrupted run = %s; want failed", done.Status)
	}
}

// TestRunsSpreadOverNodesWorkspacesStayOnOne: runs of several branches at
// once land on both nodes, while every pod of one run (workspace) shares
// its node.
func TestRunsSpreadOverNodesWorkspacesStayOnOne(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	nodes, err := s.cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil || len(nodes.Items) < 2 {
		t.Fatalf("want a cluster of 2 nodes: %v %v", len(nodes.Items), err)
	}
	pods := s.watchPods()
	const wf = `
[[steps]]
name = "a"
run = "echo a > a.txt; sleep 2"
[[steps]]
name = "b"
run = "cat a.txt"
[[steps]]
name = "c"
run = "cat a.txt"
`
	branches := []string{"b1", "b2", "b3", "b4"}
	for _, b := range branches {
		s.push("spread", b, wf)
	}
	deadline := time.Now().Add(hang)
	var runs []forge.Run
	for len(runs) < len(branches) {
		if time.Now().After(deadline) {
			t.Fatalf("%d runs, want %d", len(runs), len(branches))
		}
		runs = s.runs("spread")
		time.Sleep(100 * time.Millisecond)
	}
	for _, r := range runs {
		if done := s.waitRun("spread", r.ID); done.Status != forge.RunCompleted {
			t.Errorf("run %s = %s: %+v", r.ID, done.Status, done.Result)
		}
	}
	byRun := pods.end()
	used := map[string]bool{}
	for _, r := range runs {
		n := byRun[r.ID]
		if len(n) != 1 {
			t.Errorf("pods of run %s (branch %s) ran on %v; want exactly one node", r.ID, r.Branch, n)
		}
		for node := range n {
			used[node] = true
		}
	}
	if len(used) < 2 {
		t.Errorf("all runs went to %v; want both nodes used", used)
	}
	t.Logf("nodes by run: %v", fmt.Sprint(byRun))
}

// TestParallelStepsOfTwoFiles: a run of two workflow files, each with two
// steps that start at once (needs = []) and meet in the shared workspace
// (each waits for the other's file), then a step that needs both. Each
// file is a workspace of its own: its pods share one node and one claim,
// the other file's claim is another, and neither sees the other's files.
// The workspace is the git checkout (.git present) and stdin reads end of
// file at once. Nothing of the run is left once it ended.
func TestParallelStepsOfTwoFiles(t *testing.T) {
	s := startServer(t)
	pods := s.watchPods()
	// meet touches $1.ready and waits (a hang bound of 2 minutes, not a
	// timing assertion) for $2.ready: only two steps running at once on
	// one volume both get past it.
	const meet = `touch $1.ready; i=0; while [ ! -f $2.ready ]; do i=$((i+1)); [ $i -lt 1200 ] || exit 9; sleep 0.1; done`
	wf := func(file string) string {
		return fmt.Sprintf(`
[env]
MEET = '%s'

[[steps]]
name = "left"
needs = []
run = "sh -c \"$MEET\" meet left right; echo %[2]s > mine.txt; test -d .git && echo has-git"

[[steps]]
name = "right"
needs = []
run = "sh -c \"$MEET\" meet right left; cat; echo stdin-at-eof"

[[steps]]
name = "join"
needs = ["left", "right"]
run = "echo saw-$(cat mine.txt)"
`, meet, "from-"+file)
	}
	s.pushFiles("parallel", "main", map[string]string{"a.toml": wf("a"), "b.toml": wf("b")})
	run := s.onlyRun("parallel")
	done := s.waitRun("parallel", run.ID)
	if done.Status != forge.RunCompleted || done.Result == nil || len(done.Result.Steps) != 6 {
		t.Fatalf("run = %s %+v; want completed with 6 steps", done.Status, done.Result)
	}
	for _, st := range done.Result.Steps {
		file := strings.TrimSuffix(strings.TrimPrefix(st.File(), ".kod/workflows/"), ".toml")
		if !st.Success {
			t.Errorf("step %s of %s failed: %+v", st.Name, file, st)
		}
		want := map[string]string{"left": "has-git", "right": "stdin-at-eof", "join": "saw-from-" + file}[st.Name]
		if !strings.Contains(st.Output, want) {
			t.Errorf("step %s of %s printed %q; want %q", st.Name, file, st.Output, want)
		}
	}
	s.assertNothingLeft()
	pods.end()
	pods.mu.Lock()
	defer pods.mu.Unlock()
	nodes, claims := map[string]map[string]bool{}, map[string]map[string]bool{}
	for pod, ws := range pods.workspaces {
		if pods.runs[pod] != run.ID {
			continue
		}
		if nodes[ws] == nil {
			nodes[ws], claims[ws] = map[string]bool{}, map[string]bool{}
		}
		if n := pods.nodes[pod]; n != "" {
			nodes[ws][n] = true
		}
		claims[ws][pods.claims[pod]] = true
	}
	if len(nodes) != 2 || nodes["a"] == nil || nodes["b"] == nil {
		t.Fatalf("pods by workspace: %v; want workspaces a and b", nodes)
	}
	for ws := range nodes {
		if len(nodes[ws]) != 1 || len(claims[ws]) != 1 {
			t.Errorf("pods of workspace %s ran on nodes %v with claims %v; want one node, one claim", ws, nodes[ws], claims[ws])
		}
	}
	if fmt.Sprint(claims["a"]) == fmt.Sprint(claims["b"]) {
		t.Errorf("workspaces a and b share the claim %v", claims["a"])
	}
	t.Logf("nodes by workspace: %v; claims: %v", nodes, claims)
}

// TestFailFastStopsTheOtherInstance: with fail_fast, a failing step of one
// matrix instance stops the running pod of the other instance (another
// workspace): the run fails long before the other step's sleep ends, and
// no pod, claim or Secret is left.
func TestFailFastStopsTheOtherInstance(t *testing.T) {
	s := startServer(t)
	s.push("failfast", "main", `
fail_fast = true

[matrix]
N = ["quick", "slow"]

[[steps]]
name = "work"
run = 'if [ "$MATRIX_N" = quick ]; then sleep 5; echo quick-fails; exit 1; fi; echo slow-started; sleep 300; echo slow-finished'
`)
	run := s.onlyRun("failfast")
	done := s.waitRun("failfast", run.ID) // hang bound 3 min < the 300 s sleep
	if done.Status != forge.RunFailed || done.Result == nil || len(done.Result.Steps) != 2 {
		t.Fatalf("run = %s %+v; want failed with 2 steps", done.Status, done.Result)
	}
	for _, st := range done.Result.Steps {
		t.Logf("%s: %s %q, output %q", st.Workflow, st.Status, st.Error, st.Output)
		switch {
		case strings.Contains(st.Workflow, "N=quick"):
			if st.Status != forge.StepFailed || st.ExitCode == nil || *st.ExitCode != 1 {
				t.Errorf("quick instance: %+v; want exit code 1", st)
			}
		case strings.Contains(st.Output, "slow-finished") || st.Status == forge.StepCompleted:
			t.Errorf("the slow instance was not stopped: %+v", st)
		}
	}
	s.assertNothingLeft()
}
