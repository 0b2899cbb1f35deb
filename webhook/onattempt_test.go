package webhook

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestOnAttemptOutcomes: every recorded attempt is reported as retry
// until the schedule runs out (failed), and a manual retry that succeeds
// as success.
func TestOnAttemptOutcomes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, c, rcv := openStore(t), newClock(), newReceiver(t, 500, 500, 500, 500)
	d, hook := setup(t, store, c, loopbackPolicy(), rcv.URL, "")
	var mu sync.Mutex
	var got []string
	d.cfg.OnAttempt = func(outcome string) { mu.Lock(); got = append(got, outcome); mu.Unlock() }
	if err := d.Push(ctx, "app", pushOf("main")); err != nil {
		t.Fatal(err)
	}
	for _, wait := range []time.Duration{0, 30 * time.Second, 5 * time.Minute, 30 * time.Minute} {
		c.Add(wait)
		d.step(ctx)
	}
	if _, err := d.Retry(ctx, onlyDelivery(t, store, hook).ID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if s := strings.Join(got, ","); s != "retry,retry,retry,failed,success" {
		t.Errorf("outcomes %s", s)
	}
}
