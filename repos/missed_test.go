package repos_test

import (
	"context"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// TestMissedPostReceiveQueuesWhatLanded: a push whose post-receive never
// reached the server gets its runs from the push's end, for the updates
// that landed only: an accepted update git did not apply queues nothing.
func TestMissedPostReceiveQueuesWhatLanded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	e.create("app")
	wf := map[string]string{".kod/workflows/ci.toml": ciWorkflow}
	landed := e.commit("app", "a", wf)
	other := e.commit("app", "b", wf)
	notLanded := forge.RefUpdate{Old: other.New, New: landed.New, Ref: "refs/heads/b"} // b still holds other.New
	e.svc.MissedPostReceive(ctx, &gitsvc.Push{Repo: "app", Principal: owner, Transport: "http"}, []forge.RefUpdate{landed, notLanded})
	runs, err := e.store.ListRuns(ctx, "app", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Branch != "a" || runs[0].Commit != landed.New {
		t.Errorf("runs %+v, want one for a at %s", runs, landed.New)
	}
}
