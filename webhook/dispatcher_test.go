package webhook

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/netpolicy"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time         { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration)    { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock                  { return &clock{now: time.UnixMilli(1_700_000_000_000)} }
func loopbackPolicy() *netpolicy.Policy { p, _ := netpolicy.Parse("loopback"); return p }
func externalPolicy() *netpolicy.Policy { p, _ := netpolicy.Parse("external"); return p }
func openStore(t *testing.T) *boltstore.Store {
	return openStoreAt(t, filepath.Join(t.TempDir(), "kod.db"))
}

func openStoreAt(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ensureRepo creates repository name unless it exists.
func ensureRepo(t *testing.T, store *boltstore.Store, name string) {
	t.Helper()
	if _, err := store.GetRepo(context.Background(), name); err == nil {
		return
	}
	if err := store.CreateRepo(context.Background(), &forge.Repo{Name: name}); err != nil {
		t.Fatal(err)
	}
}

// receiver records requests and answers with the next status of a script
// (200 once the script is used up).
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	reqs     []*http.Request
	bodies   [][]byte
	statuses []int
	delay    time.Duration
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, req)
		r.bodies = append(r.bodies, body)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		delay := r.delay
		r.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-req.Context().Done(): // the sender gave up
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.reqs) }

func setup(t *testing.T, store *boltstore.Store, c *clock, policy *netpolicy.Policy, url, secret string, events ...forge.WebhookEvent) (*Dispatcher, *forge.Webhook) {
	t.Helper()
	d, err := New(Config{Now: c.Now, Policy: policy, Timeout: time.Second}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	hook, err := forge.NewWebhook("app", url, events, secret, c.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	ensureRepo(t, store, "app")
	if err := store.CreateWebhook(context.Background(), hook); err != nil {
		t.Fatal(err)
	}
	return d, hook
}

// step runs one pick-up pass and waits for its attempts.
func (d *Dispatcher) step(ctx context.Context) { d.tick(ctx); d.wg.Wait() }

func pushOf(branch string) []PushEvent {
	return []PushEvent{{Update: forge.RefUpdate{Old: strings.Repeat("0", 40), New: strings.Repeat("b", 40), Ref: "refs/heads/" + branch}, RunID: "run123456789"}}
}

func onlyDelivery(t *testing.T, store *boltstore.Store, hook *forge.Webhook) *forge.Delivery {
	t.Helper()
	list, err := store.ListDeliveries(context.Background(), hook.ID, 0)
	if err != nil || len(list) != 1 {
		t.Fatalf("deliveries: %+v %v", list, err)
	}
	return list[0]
}

func TestDeliveryHeadersAndSignature(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, rcv := openStore(t), newClock(), newReceiver(t)
	d, hook := setup(t, store, c, loopbackPolicy(), rcv.URL+"/hook", "s3cret", forge.EventPush, forge.EventWorkflow)
	if err := d.Push(ctx, "app", append(pushOf("main"), PushEvent{Update: forge.RefUpdate{Ref: "refs/tags/v1", New: "x"}})); err != nil {
		t.Fatal(err)
	}
	d.RunDone(ctx, &forge.Run{ID: "r1", RepoName: "app", Branch: "main", Commit: "c1", Status: forge.RunCompleted})
	if rcv.count() != 0 {
		t.Fatal("a delivery was sent when recorded instead of by the dispatcher")
	}
	d.step(ctx)
	if rcv.count() != 2 {
		t.Fatalf("receiver got %d requests, want push and workflow (tags are not announced)", rcv.count())
	}
	for i, req := range rcv.reqs {
		body := rcv.bodies[i]
		var payload map[string]any
		if err := json.Unmarshal(body, &payload); err != nil {
			t.Fatal(err)
		}
		event := payload["event"].(string)
		for h, want := range map[string]string{
			"Content-Type": "application/json", "User-Agent": "Kod-Webhooks",
			"X-Kod-Event": event, "X-GitHub-Event": event,
			"X-Kod-Signature-256": Sign("s3cret", body), "X-Hub-Signature-256": Sign("s3cret", body),
		} {
			if got := req.Header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", event, h, got, want)
			}
		}
		if id := req.Header.Get("X-Kod-Delivery"); id == "" || id != req.Header.Get("X-GitHub-Delivery") {
			t.Errorf("delivery ids: %q %q", id, req.Header.Get("X-GitHub-Delivery"))
		}
		if !verify("s3cret", body, req.Header.Get("X-Hub-Signature-256")) || verify("wrong", body, req.Header.Get("X-Hub-Signature-256")) {
			t.Error("signature does not verify as a GitHub receiver checks it")
		}
		switch event {
		case "push":
			if payload["repo"] != "app" || payload["branch"] != "main" || payload["commit"] != strings.Repeat("b", 40) || payload["workflowRunId"] != "run123456789" {
				t.Errorf("push body: %s", body)
			}
		case "workflow":
			if payload["id"] != "r1" || payload["status"] != "completed" || payload["commit"] != "c1" {
				t.Errorf("workflow body: %s", body)
			}
		}
	}
	for _, del := range mustList(t, store, hook) {
		if del.Status != forge.DeliverySuccess || del.Attempts != 1 || del.ResponseStatus != 200 || del.LeaseUntil != 0 {
			t.Errorf("delivery after success: %+v", del)
		}
	}
	// Without a secret there is no signature.
	setup(t, store, c, loopbackPolicy(), rcv.URL+"/bare", "")
	if err := d.Push(ctx, "app", pushOf("dev")); err != nil {
		t.Fatal(err)
	}
	d.step(ctx)
	if rcv.count() != 4 {
		t.Fatalf("receiver got %d requests, want 4", rcv.count())
	}
	for _, req := range rcv.reqs[2:] {
		if signed := req.Header.Get("X-Kod-Signature-256") != ""; signed != (req.URL.Path == "/hook") {
			t.Errorf("%s signed=%v", req.URL.Path, signed)
		}
	}
}

// verify checks a signature the way a receiver does.
func verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

func mustList(t *testing.T, store *boltstore.Store, hook *forge.Webhook) []*forge.Delivery {
	list, err := store.ListDeliveries(context.Background(), hook.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// TestRetriesFollowTheSchedule: fails twice, then succeeds, with the clock
// moved instead of waiting 5 minutes.
func TestRetriesFollowTheSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, rcv := openStore(t), newClock(), newReceiver(t, 500, 503)
	d, hook := setup(t, store, c, loopbackPolicy(), rcv.URL, "")
	start := c.Now()
	if err := d.Push(ctx, "app", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	d.step(ctx)
	del := onlyDelivery(t, store, hook)
	if del.Status != forge.DeliveryPending || del.Attempts != 1 || del.ResponseStatus != 500 || del.Error != "HTTP 500" ||
		del.NextAttemptAt != start.Add(30*time.Second).UnixMilli() {
		t.Fatalf("after failure 1: %+v", del)
	}
	c.Add(29 * time.Second)
	d.step(ctx)
	if rcv.count() != 1 {
		t.Fatal("retried before 30 s")
	}
	c.Add(time.Second)
	d.step(ctx)
	del = onlyDelivery(t, store, hook)
	if rcv.count() != 2 || del.Attempts != 2 || del.ResponseStatus != 503 || del.NextAttemptAt != c.Now().Add(5*time.Minute).UnixMilli() {
		t.Fatalf("after failure 2: %+v", del)
	}
	c.Add(5*time.Minute - time.Millisecond)
	d.step(ctx)
	c.Add(time.Millisecond)
	d.step(ctx)
	del = onlyDelivery(t, store, hook)
	if rcv.count() != 3 || del.Status != forge.DeliverySuccess || del.Attempts != 3 || del.Error != "" || del.NextAttemptAt != 0 {
		t.Fatalf("after success: %d requests, %+v", rcv.count(), del)
	}
	c.Add(time.Hour)
	d.step(ctx)
	if rcv.count() != 3 {
		t.Errorf("a successful delivery was sent again")
	}
}

func TestFailedAfterFourAttemptsThenManualRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, rcv := openStore(t), newClock(), newReceiver(t, 500, 500, 500, 500)
	d, hook := setup(t, store, c, loopbackPolicy(), rcv.URL, "")
	if err := d.Push(ctx, "app", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{0, 30 * time.Second, 5 * time.Minute, 30 * time.Minute, 10 * time.Hour} {
		c.Add(wait)
		d.step(ctx)
	}
	del := onlyDelivery(t, store, hook)
	if rcv.count() != 4 || del.Status != forge.DeliveryFailed || del.Attempts != 4 || del.MaxAttempts != 4 || del.NextAttemptAt != 0 {
		t.Fatalf("after 4 failures: %d requests, %+v", rcv.count(), del)
	}
	retried, err := d.Retry(ctx, del.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rcv.count() != 5 || retried.Status != forge.DeliverySuccess || retried.ResponseStatus != 200 {
		t.Errorf("manual retry: %+v", retried)
	}
	if _, err := d.Retry(ctx, "missing"); err == nil {
		t.Error("retry of a missing delivery succeeded")
	}
}

func TestTimeoutRedirectAndRefusedHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c := openStore(t), newClock()
	slow := newReceiver(t)
	slow.delay = time.Minute
	target := newReceiver(t)
	redirect := httptest.NewServer(http.RedirectHandler(target.URL+"/moved", http.StatusFound))
	t.Cleanup(redirect.Close)

	d, slowHook := setup(t, store, c, loopbackPolicy(), slow.URL, "")
	_, redirectHook := setup(t, store, c, loopbackPolicy(), redirect.URL, "")
	if err := d.Push(ctx, "app", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	d.step(ctx)
	// Cut by the 1 s timeout, not ended by the receiver's minute (the
	// bound only tells the two apart; a loaded machine stays far below it).
	if took := time.Since(started); took > 40*time.Second {
		t.Errorf("attempts took %s with a 1 s timeout", took)
	}
	if del := onlyDelivery(t, store, slowHook); del.Error != "timed out after 1s" || del.ResponseStatus != 0 || del.Status != forge.DeliveryPending {
		t.Errorf("slow receiver: %+v", del)
	}
	if del := onlyDelivery(t, store, redirectHook); del.ResponseStatus != http.StatusFound || !strings.Contains(del.Error, "redirects are not followed") {
		t.Errorf("redirect: %+v", del)
	}
	if target.count() != 0 {
		t.Error("a redirect was followed")
	}

	// The default policy refuses loopback receivers with a clear error.
	store2 := openStore(t)
	d2, hook := setup(t, store2, c, externalPolicy(), target.URL, "")
	if err := d2.Push(ctx, "app", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	d2.step(ctx)
	del := onlyDelivery(t, store2, hook)
	if target.count() != 0 || !strings.Contains(del.Error, "loopback") || !strings.Contains(del.Error, netpolicy.Setting) {
		t.Errorf("refused delivery: %+v", del)
	}
}

// TestRestartRecovery: a delivery claimed by a process that died is sent
// again once after a restart; finished ones are not sent again.
func TestRestartRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kod.db")
	store, c, rcv := openStoreAt(t, path), newClock(), newReceiver(t)
	d, hook := setup(t, store, c, loopbackPolicy(), rcv.URL, "")
	if err := d.Push(ctx, "app", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	d.step(ctx) // one finished delivery
	if err := d.Push(ctx, "app", pushOf("dev")); err != nil {
		t.Fatal(err)
	}
	list := mustList(t, store, hook)
	crashed, err := d.claim(ctx, list[0].ID, false) // the process dies after claiming
	if err != nil || crashed.Attempts != 1 || crashed.LeaseUntil == 0 {
		t.Fatalf("claim: %+v %v", crashed, err)
	}
	store.Close()

	store = openStoreAt(t, path)
	d2, err := New(Config{Now: c.Now, Policy: loopbackPolicy(), Every: "@every 1s"}, store, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d2.Stop(ctx)
	deadline := time.Now().Add(time.Minute)
	for rcv.count() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond) // another tick or more: nothing more is sent
	if rcv.count() != 2 {
		t.Fatalf("receiver got %d requests, want the first delivery once and the interrupted one once", rcv.count())
	}
	del, _ := store.GetDelivery(ctx, crashed.ID)
	if del.Status != forge.DeliverySuccess || del.Attempts != 1 {
		t.Errorf("recovered delivery: %+v", del)
	}
}

// TestCronPicksUpPromptly: with the real cron job (every second), a
// delivery goes out without any explicit tick. How soon is the schedule's
// business; the deadline only catches a job that never runs.
func TestCronPicksUpPromptly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, rcv := openStore(t), newReceiver(t)
	d, _ := setup(t, store, &clock{now: time.Now()}, loopbackPolicy(), rcv.URL, "")
	d.cfg.Now = time.Now
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(ctx)
	recorded := time.Now()
	if err := d.Push(ctx, "app", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	for rcv.count() == 0 && time.Since(recorded) < 30*time.Second {
		time.Sleep(20 * time.Millisecond)
	}
	if n := rcv.count(); n != 1 {
		t.Errorf("sent %d times within %s, want once", n, time.Since(recorded).Round(time.Second))
	}
}
