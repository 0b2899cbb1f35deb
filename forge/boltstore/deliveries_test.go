package boltstore

import (
	"context"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// TestDueDeliveriesTake: take sees each due delivery's repository and
// receiver (following renames, also for index entries of an earlier
// version, which carry neither) and only what it takes is returned, up
// to the limit.
func TestDueDeliveriesTake(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	for _, r := range []string{"busy", "quiet"} {
		if err := s.CreateRepo(ctx, &forge.Repo{Name: r}); err != nil {
			t.Fatal(err)
		}
	}
	slow, _ := forge.NewWebhook("busy", "http://Slow.Example:8080/hook", nil, "", 1)
	fast, _ := forge.NewWebhook("quiet", "https://fast.example/hook", nil, "", 1)
	for _, h := range []*forge.Webhook{slow, fast} {
		if err := s.CreateWebhook(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	var ds []*forge.Delivery
	for i := range 5 {
		ds = append(ds, newDelivery(slow, forge.DeliveryPending, forge.Millis(10+i)))
	}
	quiet := newDelivery(fast, forge.DeliveryPending, 100)
	if err := s.CreateDeliveries(ctx, append(ds, quiet)); err != nil {
		t.Fatal(err)
	}
	nameOf := map[string]string{} // repository id -> name at the start
	for _, r := range []string{"busy", "quiet"} {
		rec, _ := s.GetRepo(ctx, r)
		nameOf[rec.ID] = r
	}
	var asked []string
	perRepo := map[string]int{}
	take := func(repo, receiver string) bool {
		asked = append(asked, nameOf[repo]+"@"+receiver)
		perRepo[repo]++
		return perRepo[repo] <= 2
	}
	due, err := s.DueDeliveries(ctx, 1000, 3, take)
	if err != nil {
		t.Fatal(err)
	}
	if ids := deliveryIDsOf(due); !slices.Equal(ids, []string{ds[0].ID, ds[1].ID, quiet.ID}) {
		t.Errorf("taken %v, want the two oldest of busy and quiet's", ids)
	}
	want := []string{"busy@slow.example", "busy@slow.example", "busy@slow.example", "busy@slow.example", "busy@slow.example", "quiet@fast.example"}
	if !slices.Equal(asked, want) {
		t.Errorf("take asked about %v, want %v", asked, want)
	}

	// An index entry without a value (written by an earlier version) is
	// answered from its delivery; a rename changes nothing (take is asked
	// by repository id).
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketDeliveriesDue).Put(dueKey(ds[0]), nil) }); err != nil {
		t.Fatal(err)
	}
	all := func() []string {
		asked = nil
		if _, err := s.DueDeliveries(ctx, 1000, 0, func(repo, receiver string) bool {
			asked = append(asked, nameOf[repo]+"@"+receiver)
			return false
		}); err != nil {
			t.Fatal(err)
		}
		return asked
	}
	if got := all(); !slices.Equal(got, want) {
		t.Errorf("with an entry of an earlier version: %v", got)
	}
	if _, err := s.RenameRepo(ctx, "busy", "renamed"); err != nil {
		t.Fatal(err)
	}
	if got := all(); !slices.Equal(got, want) {
		t.Errorf("after rename: %v", got)
	}
	if due, _ := s.DueDeliveries(ctx, 1000, 1, nil); len(due) != 1 || due[0].RepoName != "renamed" {
		t.Errorf("a delivery read after the rename: %+v", due)
	}
}

func deliveryIDsOf(ds []*forge.Delivery) []string {
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.ID)
	}
	return ids
}
