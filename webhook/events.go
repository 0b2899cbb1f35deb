package webhook

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/kod-forge/kod/forge"
)

// Push records one push delivery per updated branch (created, updated or
// deleted; tags and other refs are not announced) for every webhook of repo
// subscribed to push. Called by the post-receive hook after the refs moved;
// the deliveries are durable when it returns and are sent by the cron job.
func (d *Dispatcher) Push(ctx context.Context, repo string, events []PushEvent) error {
	var bodies []json.RawMessage
	for _, ev := range events {
		if branch, ok := ev.Update.Branch(); ok {
			bodies = append(bodies, pushPayload(repo, branch, ev))
		}
	}
	return d.record(ctx, repo, forge.EventPush, bodies)
}

// RunDone records a workflow delivery for every webhook of the run's
// repository subscribed to workflow (runner.OnRunDone). Errors are logged.
func (d *Dispatcher) RunDone(ctx context.Context, run *forge.Run) {
	if err := d.record(ctx, run.RepoName, forge.EventWorkflow, []json.RawMessage{workflowPayload(run)}); err != nil {
		d.log.Error("recording workflow deliveries", "repo", run.RepoName, "run", run.ID, "err", err)
	}
}

// record stores one delivery per body for each webhook of repo subscribed
// to event, all in one transaction, due at once.
func (d *Dispatcher) record(ctx context.Context, repo string, event forge.WebhookEvent, bodies []json.RawMessage) error {
	if len(bodies) == 0 || d.paused.Load() {
		return nil // paused: a restored backup records nothing for the original's receivers
	}
	hooks, err := d.store.ListWebhooks(ctx, repo)
	if err != nil {
		return fmt.Errorf("listing webhooks of %s: %w", repo, err)
	}
	now := d.now()
	var ds []*forge.Delivery
	for _, h := range hooks {
		if !h.Subscribes(event) {
			continue
		}
		for _, body := range bodies {
			ds = append(ds, &forge.Delivery{
				ID: forge.NewID(), WebhookID: h.ID, RepoName: repo, Event: event, URL: h.URL,
				Status: forge.DeliveryPending, MaxAttempts: d.MaxAttempts(),
				CreatedAt: now, NextAttemptAt: now, Payload: body,
			})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	if err := d.store.CreateDeliveries(ctx, ds); err != nil {
		return fmt.Errorf("storing %s deliveries of %s: %w", event, repo, err)
	}
	return nil
}
