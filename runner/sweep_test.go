package runner_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// syncBuffer is a log sink safe for the runner's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPeriodicSweepRemovesObjectsOfFinalRuns: objects labelled with this
// instance and a run that is final (here made behind the runner's back,
// as a clean-up that failed would leave them) are removed by the periodic
// sweep, which says how many runs it cleaned in the log; objects of
// another instance stay.
func TestPeriodicSweepRemovesObjectsOfFinalRuns(t *testing.T) {
	t.Parallel()
	backend := dockertest.Require(t)
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctx := context.Background()
	if err := store.CreateRepo(ctx, &forge.Repo{Name: "repo"}); err != nil {
		t.Fatal(err)
	}
	instance, other := dockertest.NewID(t), dockertest.NewID(t)
	t.Cleanup(func() {
		dockertest.Clean(t, backend, instance)
		dockertest.Clean(t, backend, other)
	})
	var logs syncBuffer
	r := runner.New(runner.Config{
		Instance: instance, DefaultImage: dockertest.Image, Pull: sandbox.PullNever,
		LogsDir: filepath.Join(dir, "logs"), SweepEvery: 200 * time.Millisecond,
	}, store, backend, filesSource{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	run := &forge.Run{ID: dockertest.NewID(t), RepoName: "repo", Branch: "main", Status: forge.RunCompleted, CreatedAt: forge.NowMillis(), CompletedAt: forge.NowMillis()}
	if err := store.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	// Object names come from run ids: the other instance's run has its own.
	for _, spec := range []sandbox.RunSpec{{ID: run.ID, Instance: instance}, {ID: dockertest.NewID(t), Instance: other}} {
		if err := backend.SetupRun(ctx, &spec); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(dockertest.Leftovers(t, instance)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sweep left %v", dockertest.Leftovers(t, instance))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `count=1 runs=[`+run.ID+`]`) || !strings.Contains(logs.String(), `msg="swept leftover objects of runs that are not running"`) {
		t.Errorf("the sweep's log line is missing:\n%s", logs.String())
	}
	if left := dockertest.Leftovers(t, other); len(left) != 2 {
		t.Errorf("objects of another instance: %v, want its volume and network", left)
	}
}
