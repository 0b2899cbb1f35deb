package runner_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// TestFastCancelLeavesNoObject is the regression test of a cancel that
// arrives while the engine is creating a run's object (about 60-80 ms after
// queueing, right as the run turns running): the engine finishes a create
// it received even when the client hangs up, so an object could appear
// after the run's clean-up had looked for it, and stay until a sweep. An
// engine proxy holds each create until the cancelled client hangs up (a
// fixed backend keeps waiting) and the run's clean-up went by, which is
// the worst order a loaded engine can produce, for the network, the
// workspace volume, the workspace carrier and a step container. The sweep
// is off: only the run's own clean-up counts.
func TestFastCancelLeavesNoObject(t *testing.T) {
	t.Parallel()
	src := filesSource{".kod/workflows/a.toml": "[[steps]]\nname = \"s\"\nrun = \"sleep 30\"\n"}
	for _, c := range []struct{ name, method, path, cleanup string }{
		{"network", http.MethodPost, "/networks/create", "/networks/"},
		{"volume", http.MethodPost, "/volumes/create", "/volumes/"},
		{"carrier", http.MethodPost, "/containers/create", "/volumes/"},
		{"step container", http.MethodPost, "/containers/create", "/volumes/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			proxy := dockertest.StartProxy(t)
			r, _, instance, done := engineRunnerAt(t, proxy.Host, runner.Config{SweepEvery: time.Hour}, src)
			hold := dockertest.NewHold(c.method, c.path)
			ctx := context.Background()
			hold.After = func(context.Context) {
				// Let the run's clean-up remove what it finds first.
				wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
				defer cancel()
				proxy.WaitRequest(wctx, http.MethodDelete, c.cleanup)
			}
			if c.name == "step container" {
				// The second create is the step's (the first is the carrier's).
				first := dockertest.NewHold(c.method, c.path)
				first.ClientWait = time.Nanosecond
				proxy.Add(first)
			}
			proxy.Add(hold)
			run, err := r.Enqueue(ctx, runner.Request{Repo: "repo", Branch: "main", Commit: strings.Repeat("a", 40), Trigger: forge.TriggerManual})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-hold.Arrived:
			case <-time.After(60 * time.Second):
				t.Fatal("the create never reached the engine")
			}
			if err := r.Cancel(ctx, run.ID); err != nil {
				t.Fatal(err)
			}
			final := waitLong(t, done, 60*time.Second)
			if final.Status != forge.RunCancelled || final.Error != "the run was cancelled" {
				t.Errorf("run: %s %q", final.Status, final.Error)
			}
			select {
			case <-hold.Done:
			case <-time.After(60 * time.Second):
				t.Fatal("the held create never finished")
			}
			// Both orders end here: the held create is over and the run's
			// clean-up went by; nothing of the run may remain.
			waitClean(t, instance)
		})
	}
}
