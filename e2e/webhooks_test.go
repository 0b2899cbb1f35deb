package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// hookReceiver is a webhook receiver built the way users build them: it
// checks the GitHub-style signature with the shared secret and records
// every request.
type hookReceiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	got    []received
	// answer decides the status of the n-th request (0-based); nil: 200.
	answer func(n int) int
}

type received struct {
	at       time.Time
	event    string
	delivery string
	verified bool
	headers  http.Header
	body     map[string]any
}

func newHookReceiver(t *testing.T, secret string, answer func(n int) int) *hookReceiver {
	r := &hookReceiver{secret: secret, answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	mac := hmac.New(sha256.New, []byte(r.secret))
	mac.Write(raw)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	rec := received{at: time.Now(), event: req.Header.Get("X-GitHub-Event"), delivery: req.Header.Get("X-GitHub-Delivery"),
		verified: hmac.Equal([]byte(req.Header.Get("X-Hub-Signature-256")), []byte(want)), headers: req.Header}
	_ = json.Unmarshal(raw, &rec.body)
	r.mu.Lock()
	n := len(r.got)
	r.got = append(r.got, rec)
	answer := r.answer
	r.mu.Unlock()
	status := http.StatusOK
	if answer != nil {
		status = answer(n)
	}
	w.WriteHeader(status)
}

func (r *hookReceiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// waitFor polls until cond holds or fails the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) createWebhook(repo, url, secret string, events ...string) string {
	s.t.Helper()
	var hook struct{ ID string }
	s.mustDo("POST", "/repos/"+repo+"/webhooks", adminToken, map[string]any{"url": url, "secret": secret, "events": events}, http.StatusCreated, &hook)
	return hook.ID
}

func (s *server) deliveries(repo, hook string) []forge.Delivery {
	s.t.Helper()
	var ds []forge.Delivery
	s.mustDo("GET", "/repos/"+repo+"/webhooks/"+hook+"/deliveries", adminToken, nil, http.StatusOK, &ds)
	return ds
}

// TestWebhooksOnPushAndRun: a real push announces itself (with its run) and
// the run's end, signed so a GitHub-style receiver verifies it; a receiver
// that fails twice gets exactly 3 attempts at the (shortened) schedule's
// intervals; a slow receiver does not slow the push.
func TestWebhooksOnPushAndRun(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_WEBHOOK_ALLOWED_HOSTS=loopback", "KOD_WEBHOOK_RETRY_SCHEDULE=2s,4s,6s"})
	s.createRepo("hooked")
	good := newHookReceiver(t, "shared-secret", nil)
	flaky := newHookReceiver(t, "other-secret", func(n int) int {
		if n < 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	// The slow receiver answers only once the push has returned: a push
	// that waited for its deliveries would see this one time out (attempt 1
	// failed) instead of succeed.
	pushed := make(chan struct{})
	var pushedOnce sync.Once
	slow := newHookReceiver(t, "", func(int) int { <-pushed; return 200 })
	t.Cleanup(func() { pushedOnce.Do(func() { close(pushed) }) }) // before the receiver closes
	goodID := s.createWebhook("hooked", good.URL+"/kod", "shared-secret", "push", "workflow")
	flakyID := s.createWebhook("hooked", flaky.URL, "other-secret", "push")
	slowID := s.createWebhook("hooked", slow.URL, "", "push")

	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"ok\"\nrun = \"true\"\n"})
	p.git("push", "-q", s.gitURL("hooked", adminToken), "main")
	pushedOnce.Do(func() { close(pushed) })
	head := strings.TrimSpace(p.git("rev-parse", "HEAD"))
	runID := s.runs("hooked")[0].ID

	waitFor(t, 2*time.Minute, "push and workflow events", func() bool { return len(good.requests()) >= 2 })
	byEvent := map[string]received{}
	for _, r := range good.requests() {
		byEvent[r.event] = r
	}
	push, wf := byEvent["push"], byEvent["workflow"]
	if !push.verified || !wf.verified {
		t.Errorf("signatures do not verify: push %v, workflow %v", push.verified, wf.verified)
	}
	if push.body["repo"] != "hooked" || push.body["branch"] != "main" || push.body["commit"] != head || push.body["workflowRunId"] != runID {
		t.Errorf("push body: %v", push.body)
	}
	if wf.body["id"] != runID || wf.body["status"] != "completed" || wf.body["commit"] != head || wf.body["branch"] != "main" {
		t.Errorf("workflow body: %v", wf.body)
	}
	for _, r := range []received{push, wf} {
		h := r.headers
		if h.Get("User-Agent") != "Kod-Webhooks" || h.Get("Content-Type") != "application/json" || h.Get("X-Kod-Event") != r.event ||
			h.Get("X-Kod-Delivery") != r.delivery || r.delivery == "" || h.Get("X-Kod-Signature-256") != h.Get("X-Hub-Signature-256") {
			t.Errorf("%s headers: %v", r.event, h)
		}
	}

	waitFor(t, 2*time.Minute, "the slow receiver's delivery", func() bool {
		ds := s.deliveries("hooked", slowID)
		return len(ds) == 1 && ds[0].Status != forge.DeliveryPending
	})
	if ds := s.deliveries("hooked", slowID); ds[0].Status != forge.DeliverySuccess || ds[0].Attempts != 1 {
		t.Errorf("a delivery answered only after the push returned: %+v (the push waited for its deliveries)", ds[0])
	}

	waitFor(t, 2*time.Minute, "three attempts at the flaky receiver", func() bool { return len(flaky.requests()) >= 3 })
	time.Sleep(2 * time.Second) // nothing more comes
	got := flaky.requests()
	if len(got) != 3 {
		t.Fatalf("flaky receiver got %d attempts, want 3", len(got))
	}
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second} {
		gap := got[i+1].at.Sub(got[i].at)
		// Never early; late only by the pick-up and a loaded machine (the
		// upper bound tells the configured schedule from the 30 s default;
		// the dispatcher's own tests check the timing on a fake clock).
		if gap < want || gap > want+20*time.Second {
			t.Errorf("attempt %d came %s after attempt %d, want %s (the configured schedule)", i+2, gap, i+1, want)
		}
		if got[i+1].delivery != got[0].delivery {
			t.Error("a retry has another delivery id")
		}
	}
	ds := s.deliveries("hooked", flakyID)
	if len(ds) != 1 || ds[0].Status != forge.DeliverySuccess || ds[0].Attempts != 3 || ds[0].ResponseStatus != http.StatusNoContent || ds[0].MaxAttempts != 4 {
		t.Errorf("flaky delivery record: %+v", ds)
	}
	if ds := s.deliveries("hooked", goodID); len(ds) != 2 || ds[0].Event != forge.EventWorkflow || ds[1].Status != forge.DeliverySuccess {
		t.Errorf("good deliveries (newest first): %+v", ds)
	}
	// Manual retry sends again at once.
	var retried forge.Delivery
	s.mustDo("POST", "/repos/hooked/webhooks/"+goodID+"/deliveries/"+push.delivery+"/retry", adminToken, nil, http.StatusAccepted, &retried)
	if retried.Status != forge.DeliverySuccess || retried.Attempts != 2 || len(good.requests()) != 3 {
		t.Errorf("manual retry: %+v, %d requests", retried, len(good.requests()))
	}
}

// TestWebhookDeliveriesSurviveRestart: a delivery pending at shutdown is
// sent exactly once after the restart; a delivery whose attempt was cut by
// SIGKILL is sent again after the restart (at-least-once: the receiver sees
// its id twice) and then never more.
func TestWebhookDeliveriesSurviveRestart(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_WEBHOOK_ALLOWED_HOSTS=loopback", "KOD_WEBHOOK_RETRY_SCHEDULE=4s"})
	s.createRepo("durable")
	var up atomic.Bool // the receiver answers 500 until up
	rcv := newHookReceiver(t, "k", func(int) int {
		if up.Load() {
			return http.StatusOK
		}
		return http.StatusInternalServerError
	})
	hook := s.createWebhook("durable", rcv.URL, "k", "push")
	p := newProject(t, "main", map[string]string{"README.md": "x\n"})
	p.git("push", "-q", s.gitURL("durable", adminToken), "main")
	waitFor(t, 2*time.Minute, "the first attempt", func() bool { return len(rcv.requests()) == 1 })
	s.Stop() // graceful, with the delivery pending (next attempt in 4 s)
	up.Store(true)
	time.Sleep(4 * time.Second)
	s.Restart()
	waitFor(t, 2*time.Minute, "the attempt after the restart", func() bool { return len(rcv.requests()) == 2 })
	time.Sleep(2500 * time.Millisecond)
	if n := len(rcv.requests()); n != 2 {
		t.Fatalf("receiver got %d requests, want exactly 2 (one failed before, one after the restart)", n)
	}
	ds := s.deliveries("durable", hook)
	if len(ds) != 1 || ds[0].Status != forge.DeliverySuccess || ds[0].Attempts != 2 {
		t.Errorf("delivery after restart: %+v", ds)
	}

	// SIGKILL while an attempt is in flight.
	var hang sync.Once
	release := make(chan struct{})
	slow := newHookReceiver(t, "", func(int) int {
		first := false
		hang.Do(func() { first = true })
		if first {
			<-release
		}
		return http.StatusOK
	})
	defer close(release)
	slowHook := s.createWebhook("durable", slow.URL, "", "push")
	p.commit("second", map[string]string{"README.md": "y\n"})
	p.git("push", "-q", s.gitURL("durable", adminToken), "main")
	waitFor(t, 2*time.Minute, "the hanging attempt", func() bool { return len(slow.requests()) == 1 })
	s.Kill()
	s.Restart()
	waitFor(t, 2*time.Minute, "the attempt sent again after the crash", func() bool { return len(slow.requests()) == 2 })
	time.Sleep(2500 * time.Millisecond)
	reqs := slow.requests()
	if len(reqs) != 2 || reqs[0].delivery != reqs[1].delivery {
		t.Fatalf("after a crash mid-send: %d requests (ids %v)", len(reqs), reqs)
	}
	ds = s.deliveries("durable", slowHook)
	if len(ds) != 1 || ds[0].Status != forge.DeliverySuccess || ds[0].Attempts != 1 {
		t.Errorf("delivery after the crash: %+v", ds)
	}
	if !strings.Contains(s.Logs(), "webhook delivery interrupted by a restart") {
		t.Error("the recovery is not logged")
	}
}
