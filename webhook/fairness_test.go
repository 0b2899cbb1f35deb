package webhook

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
)

// stuckReceiver accepts requests and answers none until released (or the
// attempt gives up): a receiver that sleeps or hangs.
type stuckReceiver struct {
	*httptest.Server
	release  chan struct{}
	inFlight atomic.Int32
	peak     atomic.Int32
	total    atomic.Int32
}

func newStuckReceiver(t *testing.T) *stuckReceiver {
	r := &stuckReceiver{release: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.total.Add(1)
		n := r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		for p := r.peak.Load(); n > p && !r.peak.CompareAndSwap(p, n); p = r.peak.Load() {
		}
		select {
		case <-r.release:
		case <-req.Context().Done():
		}
	}))
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(r.release) }); r.Close() })
	return r
}

func addHook(t *testing.T, store *boltstore.Store, repo, url string) {
	t.Helper()
	hook, err := forge.NewWebhook(repo, url, nil, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	ensureRepo(t, store, repo)
	if err := store.CreateWebhook(context.Background(), hook); err != nil {
		t.Fatal(err)
	}
}

// waitUntil polls cond for up to a minute of real time (catches hangs only).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
	}
}

// TestSlowReceiverDoesNotDelayOthers: 40 webhooks of one repository and
// the webhooks of six more repositories all point at a receiver that hangs;
// they were recorded first. A delivery of another repository to another
// receiver is still sent in the first pick-up pass, and in every later
// pass while the hung attempts hold their slots; the hung receiver never
// has more than PerReceiver attempts at once.
func TestSlowReceiverDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := openStore(t), newClock()
	d, err := New(Config{Now: c.Now, Policy: loopbackPolicy(), Timeout: time.Minute}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.wg.Wait() }) // after the receivers' clean-ups (last in, first out) have released them
	stuck, fast := newStuckReceiver(t), newReceiver(t)
	fastURL := strings.Replace(fast.URL, "127.0.0.1", "localhost", 1) // another receiver host
	for range 40 {
		addHook(t, store, "busy", stuck.URL)
	}
	repos := []string{"r1", "r2", "r3", "r4", "r5", "r6"}
	for _, r := range repos {
		addHook(t, store, r, stuck.URL+"/"+r)
	}
	addHook(t, store, "quiet", fastURL)
	if err := d.Push(ctx, "busy", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		if err := d.Push(ctx, r, pushOf("main")); err != nil {
			t.Fatal(err)
		}
	}
	c.Add(time.Millisecond) // the quiet repository's delivery is the newest
	for pass := 1; pass <= 3; pass++ {
		if err := d.Push(ctx, "quiet", pushOf("main")); err != nil {
			t.Fatal(err)
		}
		d.tick(ctx)
		waitUntil(t, "the fast receiver's delivery", func() bool { return fast.count() == pass })
		waitUntil(t, "the stuck receiver's attempts", func() bool { return stuck.inFlight.Load() == DefaultPerReceiver })
		c.Add(time.Second)
	}
	if peak, total := stuck.peak.Load(), stuck.total.Load(); peak != DefaultPerReceiver || total != DefaultPerReceiver {
		t.Errorf("stuck receiver: %d attempts at once, %d in all; want %d", peak, total, DefaultPerReceiver)
	}
}

// TestOneRepositoryCannotTakeEverySlot: a repository whose many webhooks
// point at many hung receivers holds at most PerRepository slots, so
// another repository's delivery goes out in the same pass.
func TestOneRepositoryCannotTakeEverySlot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := openStore(t), newClock()
	d, err := New(Config{Now: c.Now, Policy: loopbackPolicy(), Timeout: time.Minute, PerReceiver: 100}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.wg.Wait() })
	fast := newReceiver(t)
	var stuck []*stuckReceiver
	for range 20 {
		r := newStuckReceiver(t)
		stuck = append(stuck, r)
		addHook(t, store, "busy", r.URL)
	}
	addHook(t, store, "quiet", fast.URL)
	if err := d.Push(ctx, "busy", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Millisecond)
	if err := d.Push(ctx, "quiet", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	d.tick(ctx)
	waitUntil(t, "the other repository's delivery", func() bool { return fast.count() == 1 })
	inFlight := func() (n int32) {
		for _, r := range stuck {
			n += r.inFlight.Load()
		}
		return n
	}
	waitUntil(t, "the busy repository's attempts", func() bool { return inFlight() == DefaultPerRepository })
	d.tick(ctx)
	time.Sleep(50 * time.Millisecond)
	if n := inFlight(); n != DefaultPerRepository {
		t.Errorf("busy repository: %d attempts in flight, want %d", n, DefaultPerRepository)
	}
}
