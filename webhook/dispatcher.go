// Package webhook announces repository events to subscribed URLs. A
// delivery is written to the store when its event happens (a push after the
// refs moved, a run reaching its final state) and sent later by the
// Dispatcher, never inside the git push: a cron job (robfig/cron) picks up
// due deliveries every second, signs them, sends them through the outbound
// host policy, and reschedules failures (30 s, 5 min, 30 min, then failed).
// Attempts in flight are capped in all, per repository and per receiver
// host, so a slow receiver delays only its own deliveries.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/netpolicy"
)

// Store is what the dispatcher needs from the forge store.
type Store interface {
	forge.WebhookStore
	forge.DeliveryStore
	// WebhooksPaused and SetWebhooksPaused keep the pause of a restored
	// data dir (see Dispatcher.Paused).
	WebhooksPaused(ctx context.Context) (bool, error)
	SetWebhooksPaused(ctx context.Context, paused bool) error
}

// DefaultSchedule is Kod's: after failed attempt n the next is due after
// DefaultSchedule[n-1]; after len+1 attempts the delivery is failed.
var DefaultSchedule = []time.Duration{30 * time.Second, 5 * time.Minute, 30 * time.Minute}

// Defaults of the attempt caps (Config).
const (
	DefaultConcurrency   = 16
	DefaultPerRepository = 4
	DefaultPerReceiver   = 4
)

// Config tunes the dispatcher. Zero values take the defaults noted.
type Config struct {
	Schedule      []time.Duration   // retry delays; default DefaultSchedule (4 attempts)
	Timeout       time.Duration     // per attempt, connect to last byte; default 5 s
	Every         string            // cron spec of the pick-up job; default "@every 1s"
	Concurrency   int               // attempts in flight at once; default DefaultConcurrency
	PerRepository int               // of which to one repository's webhooks; default DefaultPerRepository
	PerReceiver   int               // of which to one receiver host; default DefaultPerReceiver
	Policy        *netpolicy.Policy // outbound host policy; default public addresses only
	Now           func() time.Time  // clock; default time.Now
	// OnAttempt, if set, is told the outcome of every attempt that was
	// recorded: "success", "retry" (another attempt is scheduled) or
	// "failed" (none is left). It must not block.
	OnAttempt func(outcome string)
}

// Dispatcher writes and sends deliveries. Create with New, then Start.
type Dispatcher struct {
	cfg    Config
	store  Store
	client *http.Client
	log    *slog.Logger
	load   *load      // attempts in flight, by repository and receiver
	passMu sync.Mutex // one pick-up pass at a time
	wg     sync.WaitGroup
	cron   *cron.Cron
	paused atomic.Bool // deliveries neither recorded nor sent (a restored backup)
}

// Paused reports whether deliveries are paused: a data dir restored from a
// backup starts so (kod restore), so that it does not deliver to the
// original server's receivers; Resume (POST /admin/webhooks/resume) ends it.
func (d *Dispatcher) Paused() bool { return d.paused.Load() }

// Resume ends the pause for good (stored) and lets due deliveries go.
func (d *Dispatcher) Resume(ctx context.Context) error {
	if err := d.store.SetWebhooksPaused(ctx, false); err != nil {
		return err
	}
	if d.paused.Swap(false) {
		d.log.Info("webhook deliveries resumed")
	}
	return nil
}

// New returns a dispatcher; nothing is sent until Start.
func New(cfg Config, store Store, log *slog.Logger) (*Dispatcher, error) {
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Every == "" {
		cfg.Every = "@every 1s"
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.PerRepository <= 0 {
		cfg.PerRepository = DefaultPerRepository
	}
	if cfg.PerReceiver <= 0 {
		cfg.PerReceiver = DefaultPerReceiver
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Policy == nil {
		p, err := netpolicy.Parse("")
		if err != nil {
			return nil, err
		}
		cfg.Policy = p
	}
	d := &Dispatcher{cfg: cfg, store: store, log: log.With("component", "webhooks"), load: newLoad()}
	d.client = newClient(cfg.Policy, cfg.Timeout)
	return d, nil
}

func (d *Dispatcher) now() forge.Millis { return d.cfg.Now().UnixMilli() }

// MaxAttempts is the number of attempts before a delivery is failed.
func (d *Dispatcher) MaxAttempts() int { return len(d.cfg.Schedule) + 1 }

// Start recovers deliveries whose attempt was interrupted by a crash (they
// are due again at once: at-least-once, the receiver may have got the
// interrupted attempt and can tell by its X-Kod-Delivery id), then starts
// the cron job. Sends stop with Stop.
func (d *Dispatcher) Start(ctx context.Context) error {
	if err := d.loadPause(ctx); err != nil {
		return err
	}
	if err := d.recover(ctx); err != nil {
		return err
	}
	loopCtx := context.WithoutCancel(ctx)
	d.cron = cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := d.cron.AddFunc(d.cfg.Every, func() { d.tick(loopCtx) }); err != nil {
		return fmt.Errorf("scheduling webhook deliveries: %w", err)
	}
	d.cron.Start()
	return nil
}

// loadPause reads the stored pause (Start).
func (d *Dispatcher) loadPause(ctx context.Context) error {
	paused, err := d.store.WebhooksPaused(ctx)
	if err != nil {
		return fmt.Errorf("reading whether webhooks are paused: %w", err)
	}
	d.paused.Store(paused)
	if paused {
		d.log.Warn("webhook deliveries are paused (this data dir was restored from a backup, whose webhooks point at the original server's receivers): nothing is delivered or recorded until an admin resumes them with POST /admin/webhooks/resume")
	}
	return nil
}

func (d *Dispatcher) recover(ctx context.Context) error {
	leased, err := d.store.LeasedDeliveries(ctx)
	if err != nil {
		return fmt.Errorf("listing interrupted webhook deliveries: %w", err)
	}
	now := d.now()
	for _, del := range leased {
		_, err := d.store.UpdateDelivery(ctx, del.ID, func(x *forge.Delivery) error {
			x.LeaseUntil = 0
			x.Attempts = max(x.Attempts-1, 0) // the interrupted attempt's outcome is unknown: send it again
			x.Status = forge.DeliveryPending
			x.NextAttemptAt = now
			return nil
		})
		if err != nil && !errors.Is(err, forge.ErrNotFound) {
			return fmt.Errorf("recovering webhook delivery %s: %w", del.ID, err)
		}
		d.log.Warn("webhook delivery interrupted by a restart: sending it again", "delivery", del.ID, "repo", del.RepoName)
	}
	return nil
}

// Stop stops picking up deliveries and waits, until ctx ends, for attempts
// in flight (at most Timeout each) so their outcome is recorded.
func (d *Dispatcher) Stop(ctx context.Context) error {
	if d.cron != nil {
		<-d.cron.Stop().Done()
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("webhook deliveries still in flight: %w", ctx.Err())
	}
}

// tick claims due deliveries while attempt slots are free and sends each
// in its own goroutine. Deliveries are taken oldest first, passing over
// those whose repository or receiver has used its slots (Config), so a
// slow receiver's backlog never keeps others' deliveries waiting.
func (d *Dispatcher) tick(ctx context.Context) {
	if d.paused.Load() {
		return
	}
	d.passMu.Lock()
	defer d.passMu.Unlock()
	pick := d.load.picker(d.cfg)
	if pick.free <= 0 {
		return
	}
	due, err := d.store.DueDeliveries(ctx, d.now(), pick.free, pick.take)
	if err != nil {
		d.log.Error("reading due webhook deliveries", "err", err)
		return
	}
	for _, del := range due {
		claimed, err := d.claim(ctx, del.ID, false)
		if err != nil {
			if !errors.Is(err, errNotDue) && !errors.Is(err, forge.ErrNotFound) {
				d.log.Error("claiming a webhook delivery", "delivery", del.ID, "err", err)
			}
			continue
		}
		s := slot{repo: del.RepoID, receiver: del.Receiver()}
		d.load.acquire(s)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			defer d.load.release(s)
			d.attempt(ctx, claimed)
		}()
	}
}

var errNotDue = errors.New("delivery is not due")

// claim records the start of an attempt before it is made: the attempt is
// counted and the delivery leased, in one transaction, so no other sender
// takes it and a crash during the attempt is found at the next start.
// manual claims any delivery that is not being sent (Kod: retry now).
func (d *Dispatcher) claim(ctx context.Context, id string, manual bool) (*forge.Delivery, error) {
	now := d.now()
	return d.store.UpdateDelivery(ctx, id, func(x *forge.Delivery) error {
		switch {
		case manual && x.LeaseUntil != 0:
			return forge.Conflict("Webhook delivery is being sent")
		case !manual && !x.Due(now):
			return errNotDue
		}
		x.Status = forge.DeliveryPending
		x.Attempts++
		x.LastAttemptAt = now
		x.LeaseUntil = now + (d.cfg.Timeout + 30*time.Second).Milliseconds()
		return nil
	})
}

// attempt sends a claimed delivery and records the outcome, releasing the
// lease: success, another attempt per the schedule, or failed.
func (d *Dispatcher) attempt(ctx context.Context, del *forge.Delivery) *forge.Delivery {
	var status int
	hook, err := d.store.GetWebhook(ctx, del.WebhookID)
	if err == nil {
		sendCtx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		status, err = d.send(sendCtx, del, hook.Secret)
		cancel()
	} else if errors.Is(err, forge.ErrNotFound) {
		err = errors.New("webhook no longer exists")
	}
	now := d.now()
	final, uerr := d.store.UpdateDelivery(context.WithoutCancel(ctx), del.ID, func(x *forge.Delivery) error {
		x.LeaseUntil, x.ResponseStatus, x.Error, x.NextAttemptAt = 0, status, "", 0
		switch {
		case err == nil:
			x.Status = forge.DeliverySuccess
		case x.Attempts < x.MaxAttempts:
			x.Status, x.Error = forge.DeliveryPending, err.Error()
			x.NextAttemptAt = now + d.delay(x.Attempts).Milliseconds()
		default:
			x.Status, x.Error = forge.DeliveryFailed, err.Error()
		}
		return nil
	})
	if uerr == nil && d.cfg.OnAttempt != nil {
		d.cfg.OnAttempt(attemptOutcome(final.Status))
	}
	switch {
	case uerr != nil && !errors.Is(uerr, forge.ErrNotFound): // deleted with its webhook
		d.log.Error("recording a webhook attempt", "delivery", del.ID, "err", uerr)
	case uerr != nil:
	case err != nil:
		d.log.Warn("webhook delivery failed", "delivery", del.ID, "repo", del.RepoName, "webhook", del.WebhookID,
			"attempt", final.Attempts, "status", final.Status, "err", err)
	default:
		d.log.Info("webhook delivered", "delivery", del.ID, "repo", del.RepoName, "webhook", del.WebhookID, "http", status)
	}
	return final
}

// attemptOutcome names how an attempt left a delivery (Config.OnAttempt).
func attemptOutcome(s forge.DeliveryStatus) string {
	switch s {
	case forge.DeliverySuccess:
		return "success"
	case forge.DeliveryPending:
		return "retry"
	}
	return "failed"
}

// delay is the wait after failed attempt n (1-based).
func (d *Dispatcher) delay(n int) time.Duration {
	if len(d.cfg.Schedule) == 0 {
		return 0
	}
	return d.cfg.Schedule[min(max(n-1, 0), len(d.cfg.Schedule)-1)]
}

// Retry sends delivery id at once, whatever its state (Kod API: POST
// .../deliveries/:deliveryId/retry), and returns it as recorded after the
// attempt. ErrNotFound; ErrConflict while an attempt is in flight.
func (d *Dispatcher) Retry(ctx context.Context, id string) (*forge.Delivery, error) {
	if d.paused.Load() {
		return nil, forge.Conflict("Webhook deliveries are paused (this server was restored from a backup): an admin resumes them with POST /admin/webhooks/resume")
	}
	claimed, err := d.claim(ctx, id, true)
	if err != nil {
		return nil, err
	}
	d.wg.Add(1)
	defer d.wg.Done()
	if final := d.attempt(ctx, claimed); final != nil {
		return final, nil
	}
	return d.store.GetDelivery(ctx, id)
}
