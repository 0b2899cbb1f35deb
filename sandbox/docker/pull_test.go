package docker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakePulls replaces the engine pull of a backend (which never contacts
// the engine in these tests) with one that blocks until release is closed.
type fakePulls struct {
	calls   atomic.Int32
	release chan struct{}
	err     error
}

func newPullBackend(t *testing.T) (*Docker, *fakePulls) {
	t.Helper()
	d, err := New(Config{Host: "unix://" + t.TempDir() + "/none.sock"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	f := &fakePulls{release: make(chan struct{})}
	d.pullImage = func(ctx context.Context, ref string) error {
		f.calls.Add(1)
		select {
		case <-f.release:
			return f.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return d, f
}

// waiters returns how many callers wait for the pull of ref.
func waiters(d *Docker, ref string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.pulls[ref]; c != nil {
		return c.waiters
	}
	return 0
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within a minute")
		}
	}
}

func TestPullSingleFlight(t *testing.T) {
	d, f := newPullBackend(t)
	f.err = errors.New("registry says no")
	const n = 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = d.pull(t.Context(), "alpine:3.20") })
	}
	eventually(t, func() bool { return waiters(d, "alpine:3.20") == n })
	close(f.release)
	wg.Wait()
	if got := f.calls.Load(); got != 1 {
		t.Errorf("engine pulls = %d, want 1", got)
	}
	for i, err := range errs {
		if !errors.Is(err, f.err) {
			t.Errorf("caller %d: %v, want %v", i, err, f.err)
		}
	}
	// Finished pulls are forgotten: the next caller pulls again.
	if err := d.pull(t.Context(), "alpine:3.20"); !errors.Is(err, f.err) || f.calls.Load() != 2 {
		t.Errorf("second pull: %v after %d engine pulls", err, f.calls.Load())
	}
}

func TestPullOutlivesOneCaller(t *testing.T) {
	d, f := newPullBackend(t)
	quitter, quit := context.WithCancel(t.Context())
	quitErr := make(chan error, 1)
	go func() { quitErr <- d.pull(quitter, "img") }()
	eventually(t, func() bool { return waiters(d, "img") == 1 })
	stayErr := make(chan error, 1)
	go func() { stayErr <- d.pull(t.Context(), "img") }()
	eventually(t, func() bool { return waiters(d, "img") == 2 })

	quit()
	if err := <-quitErr; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled caller: %v", err)
	}
	close(f.release)
	if err := <-stayErr; err != nil {
		t.Errorf("remaining caller: %v, want the pull's success", err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("engine pulls = %d, want 1", got)
	}
}

func TestPullCancelledWhenEveryoneLeaves(t *testing.T) {
	d, f := newPullBackend(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.pull(ctx, "img") }()
	eventually(t, func() bool { return waiters(d, "img") == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("pull: %v", err)
	}
	// The abandoned pull's context is cancelled, so its goroutine ends
	// (Close waits for it) and a new caller starts a fresh pull.
	close(f.release)
	if err := d.pull(t.Context(), "img"); err != nil {
		t.Errorf("fresh pull: %v", err)
	}
	if got := f.calls.Load(); got != 2 {
		t.Errorf("engine pulls = %d, want 2", got)
	}
}
