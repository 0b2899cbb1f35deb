package boltstore

import (
	"context"
	"errors"
	"testing"

	"github.com/kod-forge/kod/forge"
)

func newDelivery(hook *forge.Webhook, status forge.DeliveryStatus, next forge.Millis) *forge.Delivery {
	return &forge.Delivery{ID: forge.NewID(), WebhookID: hook.ID, RepoName: hook.RepoName, Event: forge.EventPush,
		URL: hook.URL, Status: status, MaxAttempts: 4, CreatedAt: next, NextAttemptAt: next, Payload: []byte(`{}`)}
}

func TestWebhooksAndDeliveries(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	for _, r := range []string{"app", "app-2"} {
		if err := s.CreateRepo(ctx, &forge.Repo{Name: r}); err != nil {
			t.Fatal(err)
		}
	}
	hook, err := forge.NewWebhook("app", "https://example.com/hook", nil, "sig", 1)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := forge.NewWebhook("app-2", "https://example.com/other", []forge.WebhookEvent{forge.EventWorkflow}, "", 2)
	for _, h := range []*forge.Webhook{hook, other} {
		if err := s.CreateWebhook(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	if hooks, _ := s.ListWebhooks(ctx, "app"); len(hooks) != 1 || hooks[0].ID != hook.ID || hooks[0].Secret != "sig" {
		t.Fatalf("list: %+v", hooks)
	}

	// Due index: only pending deliveries whose time has come, earliest first.
	late := newDelivery(hook, forge.DeliveryPending, 300)
	early := newDelivery(hook, forge.DeliveryPending, 100)
	done := newDelivery(hook, forge.DeliverySuccess, 50)
	if err := s.CreateDeliveries(ctx, []*forge.Delivery{late, early, done}); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueDeliveries(ctx, 200, 0, nil)
	if len(due) != 1 || due[0].ID != early.ID {
		t.Fatalf("due at 200: %+v", due)
	}
	// Claiming (a lease) takes it out of the index; finishing with a later
	// attempt puts it back at its new time.
	if _, err := s.UpdateDelivery(ctx, early.ID, func(d *forge.Delivery) error { d.LeaseUntil = 1000; d.Attempts++; return nil }); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueDeliveries(ctx, 200, 0, nil); len(due) != 0 {
		t.Fatalf("leased delivery still due: %+v", due)
	}
	if leased, _ := s.LeasedDeliveries(ctx); len(leased) != 1 || leased[0].ID != early.ID {
		t.Fatalf("leased: %+v", leased)
	}
	if _, err := s.UpdateDelivery(ctx, early.ID, func(d *forge.Delivery) error { d.LeaseUntil = 0; d.NextAttemptAt = 400; return nil }); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueDeliveries(ctx, 1000, 0, nil)
	if len(due) != 2 || due[0].ID != late.ID || due[1].ID != early.ID {
		t.Fatalf("due at 1000: %+v", due)
	}
	list, _ := s.ListDeliveries(ctx, hook.ID, 0)
	if len(list) != 3 || list[0].ID != done.ID || list[2].ID != late.ID {
		t.Fatalf("deliveries newest first: %v %v %v", list[0].ID, list[1].ID, list[2].ID)
	}
	if _, err := s.UpdateDelivery(ctx, "nope", func(*forge.Delivery) error { return nil }); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("update of a missing delivery: %v", err)
	}

	// Rename moves webhooks and deliveries; delete removes them.
	if _, err := s.RenameRepo(ctx, "app", "web"); err != nil {
		t.Fatal(err)
	}
	if hooks, _ := s.ListWebhooks(ctx, "web"); len(hooks) != 1 || hooks[0].RepoName != "web" {
		t.Fatalf("webhooks after rename: %+v", hooks)
	}
	if hooks, _ := s.ListWebhooks(ctx, "app"); len(hooks) != 0 {
		t.Fatalf("webhooks left under the old name: %+v", hooks)
	}
	if d, _ := s.GetDelivery(ctx, late.ID); d.RepoName != "web" {
		t.Errorf("delivery repo after rename: %s", d.RepoName)
	}
	if err := s.DeleteRepo(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetWebhook(ctx, hook.ID); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("webhook of a deleted repository: %v", err)
	}
	if _, err := s.GetDelivery(ctx, late.ID); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("delivery of a deleted repository: %v", err)
	}
	if due, _ := s.DueDeliveries(ctx, 1<<40, 0, nil); len(due) != 0 {
		t.Errorf("due index keeps deleted deliveries: %+v", due)
	}
	if hooks, _ := s.ListWebhooks(ctx, "app-2"); len(hooks) != 1 {
		t.Errorf("a repository sharing the prefix lost its webhook")
	}
}

func TestDeliveryHistoryIsPruned(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	mustRepos(t, s, "app")
	hook, _ := forge.NewWebhook("app", "https://example.com/hook", nil, "", 1)
	if err := s.CreateWebhook(ctx, hook); err != nil {
		t.Fatal(err)
	}
	pending := newDelivery(hook, forge.DeliveryPending, 1) // oldest, still pending: kept
	if err := s.CreateDeliveries(ctx, []*forge.Delivery{pending}); err != nil {
		t.Fatal(err)
	}
	var first *forge.Delivery
	for i := range 130 {
		d := newDelivery(hook, forge.DeliveryFailed, forge.Millis(10+i))
		if i == 0 {
			first = d
		}
		if err := s.CreateDeliveries(ctx, []*forge.Delivery{d}); err != nil {
			t.Fatal(err)
		}
	}
	list, _ := s.ListDeliveries(ctx, hook.ID, 0)
	if len(list) != forge.MaxDeliveriesKept+1 || list[len(list)-1].ID != pending.ID {
		t.Fatalf("kept %d deliveries (oldest %s), want the newest %d plus the pending one", len(list), list[len(list)-1].ID, forge.MaxDeliveriesKept)
	}
	if _, err := s.GetDelivery(ctx, first.ID); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("oldest finished delivery was not pruned: %v", err)
	}
	if list, _ := s.ListDeliveries(ctx, hook.ID, 10); len(list) != 10 {
		t.Errorf("limit: %d", len(list))
	}
	if err := s.DeleteWebhook(ctx, hook.ID); err != nil {
		t.Fatal(err)
	}
	if d, err := s.GetDelivery(ctx, pending.ID); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("delivery of a deleted webhook: %+v %v", d, err)
	}
}
