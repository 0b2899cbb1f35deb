package boltstore

import (
	"bytes"
	"context"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

func deliveryHookKey(webhookID string, seq uint64) []byte {
	return append(repoPrefix(webhookID), u64(seq)...)
}

// dueKey orders pending deliveries by the time of their next attempt.
func dueKey(d *forge.Delivery) []byte {
	return append(u64(uint64(max(d.NextAttemptAt, 0))), d.ID...)
}

// dueValue is d's value in the due index: its repository and receiver,
// so that DueDeliveries can pass over deliveries without reading them.
func dueValue(d *forge.Delivery) []byte {
	return []byte(d.RepoName + "\x00" + d.Receiver())
}

// parseDueValue reads a dueValue; ok is false for entries written without
// one (by an earlier version), whose delivery must be read instead.
func parseDueValue(v []byte) (repo, receiver string, ok bool) {
	repo, receiver, ok = strings.Cut(string(v), "\x00")
	return repo, receiver, ok
}

// waiting reports whether d belongs in the due index.
func waiting(d *forge.Delivery) bool { return d.Status == forge.DeliveryPending && d.LeaseUntil == 0 }

// CreateDeliveries implements forge.DeliveryStore.
func (s *Store) CreateDeliveries(ctx context.Context, ds []*forge.Delivery) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		hooks := map[string]bool{}
		for _, d := range ds {
			if b.Get([]byte(d.ID)) != nil {
				return forge.Conflict("Webhook delivery already exists")
			}
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			d.Seq = seq
			if err := tx.Bucket(bucketDeliveriesByHook).Put(deliveryHookKey(d.WebhookID, seq), []byte(d.ID)); err != nil {
				return err
			}
			if waiting(d) {
				if err := tx.Bucket(bucketDeliveriesDue).Put(dueKey(d), dueValue(d)); err != nil {
					return err
				}
			}
			if err := putJSON(b, []byte(d.ID), d); err != nil {
				return err
			}
			hooks[d.WebhookID] = true
		}
		for id := range hooks {
			if err := pruneDeliveries(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
}

// pruneDeliveries keeps the newest MaxDeliveriesKept deliveries of a
// webhook and, beyond them, only those still pending.
func pruneDeliveries(tx *bolt.Tx, webhookID string) error {
	ids := deliveryIDs(tx, webhookID) // oldest first
	if len(ids) <= forge.MaxDeliveriesKept {
		return nil
	}
	b := tx.Bucket(bucketDeliveries)
	for _, id := range ids[:len(ids)-forge.MaxDeliveriesKept] {
		var d forge.Delivery
		ok, err := getJSON(b, []byte(id), &d)
		if err != nil {
			return err
		}
		if ok && d.Status == forge.DeliveryPending {
			continue
		}
		if err := deleteDeliveryTx(tx, id); err != nil {
			return err
		}
	}
	return nil
}

// deliveryIDs returns the delivery ids of a webhook, oldest first.
func deliveryIDs(tx *bolt.Tx, webhookID string) []string {
	var ids []string
	prefix := repoPrefix(webhookID)
	c := tx.Bucket(bucketDeliveriesByHook).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		ids = append(ids, string(v))
	}
	return ids
}

// GetDelivery implements forge.DeliveryStore.
func (s *Store) GetDelivery(ctx context.Context, id string) (*forge.Delivery, error) {
	return getRecord[forge.Delivery](s.db, bucketDeliveries, id, "Webhook delivery not found")
}

// ListDeliveries implements forge.DeliveryStore.
func (s *Store) ListDeliveries(ctx context.Context, webhookID string, limit int) ([]*forge.Delivery, error) {
	var out []*forge.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		ids := deliveryIDs(tx, webhookID)
		slices.Reverse(ids)
		b := tx.Bucket(bucketDeliveries)
		for _, id := range ids {
			var d forge.Delivery
			ok, err := getJSON(b, []byte(id), &d)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, &d)
			}
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// DueDeliveries implements forge.DeliveryStore. Deliveries take refuses
// are passed over by their index entry, unread, so a long queue of one
// repository costs little to skip.
func (s *Store) DueDeliveries(ctx context.Context, now forge.Millis, limit int, take func(repo, receiver string) bool) ([]*forge.Delivery, error) {
	var out []*forge.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		end := u64(uint64(max(now, 0)))
		c := tx.Bucket(bucketDeliveriesDue).Cursor()
		for k, v := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0; k, v = c.Next() {
			repo, receiver, indexed := parseDueValue(v)
			if indexed && take != nil && !take(repo, receiver) {
				continue
			}
			var d forge.Delivery
			ok, err := getJSON(b, k[8:], &d)
			if err != nil {
				return err
			}
			if !ok || !d.Due(now) || !indexed && take != nil && !take(d.RepoName, d.Receiver()) {
				continue
			}
			out = append(out, &d)
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// LeasedDeliveries implements forge.DeliveryStore.
func (s *Store) LeasedDeliveries(ctx context.Context) ([]*forge.Delivery, error) {
	var out []*forge.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		return b.ForEach(func(k, _ []byte) error {
			var d forge.Delivery
			if _, err := getJSON(b, k, &d); err != nil {
				return err
			}
			if d.LeaseUntil != 0 {
				out = append(out, &d)
			}
			return nil
		})
	})
	return out, err
}

// UpdateDelivery implements forge.DeliveryStore.
func (s *Store) UpdateDelivery(ctx context.Context, id string, fn func(*forge.Delivery) error) (*forge.Delivery, error) {
	var d forge.Delivery
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, due := tx.Bucket(bucketDeliveries), tx.Bucket(bucketDeliveriesDue)
		ok, err := getJSON(b, []byte(id), &d)
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound("Webhook delivery not found")
		}
		if waiting(&d) {
			if err := due.Delete(dueKey(&d)); err != nil {
				return err
			}
		}
		hook, repo, seq := d.WebhookID, d.RepoName, d.Seq
		if err := fn(&d); err != nil {
			return err
		}
		d.ID, d.WebhookID, d.RepoName, d.Seq = id, hook, repo, seq
		if waiting(&d) {
			if err := due.Put(dueKey(&d), dueValue(&d)); err != nil {
				return err
			}
		}
		return putJSON(b, []byte(id), &d)
	})
	if err != nil {
		return nil, err
	}
	return &d, nil
}

func deleteDeliveryTx(tx *bolt.Tx, id string) error {
	b := tx.Bucket(bucketDeliveries)
	var d forge.Delivery
	ok, err := getJSON(b, []byte(id), &d)
	if err != nil || !ok {
		return err
	}
	if err := tx.Bucket(bucketDeliveriesDue).Delete(dueKey(&d)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketDeliveriesByHook).Delete(deliveryHookKey(d.WebhookID, d.Seq)); err != nil {
		return err
	}
	return b.Delete([]byte(id))
}

// renameDeliveries moves the deliveries of a webhook to repository newName.
func renameDeliveries(tx *bolt.Tx, webhookID, newName string) error {
	b := tx.Bucket(bucketDeliveries)
	for _, id := range deliveryIDs(tx, webhookID) {
		var d forge.Delivery
		ok, err := getJSON(b, []byte(id), &d)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		d.RepoName = newName
		if err := putJSON(b, []byte(id), &d); err != nil {
			return err
		}
		if waiting(&d) {
			if err := tx.Bucket(bucketDeliveriesDue).Put(dueKey(&d), dueValue(&d)); err != nil {
				return err
			}
		}
	}
	return nil
}
