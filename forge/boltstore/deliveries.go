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

// dueValue is d's value in the due index: its repository's id and its
// receiver, so that DueDeliveries can pass over deliveries without reading
// them.
func dueValue(d *forge.Delivery) []byte {
	return []byte(d.RepoID + "\x00" + d.Receiver())
}

// getDelivery reads delivery id with its repository's current name.
func getDelivery(tx *bolt.Tx, names *repoNames, id []byte) (*forge.Delivery, bool, error) {
	var d forge.Delivery
	ok, err := getJSON(tx.Bucket(bucketDeliveries), id, &d)
	if !ok || err != nil {
		return nil, ok, err
	}
	d.RepoName = names.of(d.RepoID)
	return &d, true, nil
}

func putDelivery(tx *bolt.Tx, d *forge.Delivery) error {
	stored := *d
	stored.RepoName = ""
	return putJSON(tx.Bucket(bucketDeliveries), []byte(d.ID), &stored)
}

// parseDueValue reads a dueValue; ok is false for entries written without
// one (by an earlier version), whose delivery must be read instead.
func parseDueValue(v []byte) (repo, receiver string, ok bool) {
	repo, receiver, ok = strings.Cut(string(v), "\x00")
	return repo, receiver, ok
}

// waiting reports whether d belongs in the due index.
func waiting(d *forge.Delivery) bool { return d.Status == forge.DeliveryPending && d.LeaseUntil == 0 }

// CreateDeliveries implements forge.DeliveryStore. A delivery's
// repository is d.RepoID, or else the repository named d.RepoName
// (ErrNotFound if none).
func (s *Store) CreateDeliveries(ctx context.Context, ds []*forge.Delivery) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		hooks := map[string]bool{}
		for _, d := range ds {
			if b.Get([]byte(d.ID)) != nil {
				return forge.Conflict("Webhook delivery already exists")
			}
			if d.RepoID == "" {
				id, err := repoIDOf(tx, d.RepoName)
				if err != nil {
					return err
				}
				d.RepoID = id
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
			if err := putDelivery(tx, d); err != nil {
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
	var d *forge.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		d, ok, err = getDelivery(tx, namesIn(tx), []byte(id))
		if err == nil && !ok {
			err = forge.NotFound("Webhook delivery not found")
		}
		return err
	})
	return d, err
}

// ListDeliveries implements forge.DeliveryStore.
func (s *Store) ListDeliveries(ctx context.Context, webhookID string, limit int) ([]*forge.Delivery, error) {
	var out []*forge.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		ids := deliveryIDs(tx, webhookID)
		slices.Reverse(ids)
		names := namesIn(tx)
		for _, id := range ids {
			d, ok, err := getDelivery(tx, names, []byte(id))
			if err != nil {
				return err
			}
			if ok {
				out = append(out, d)
			}
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// DueDeliveries implements forge.DeliveryStore; take is asked by
// repository id. Deliveries take refuses
// are passed over by their index entry, unread, so a long queue of one
// repository costs little to skip.
func (s *Store) DueDeliveries(ctx context.Context, now forge.Millis, limit int, take func(repo, receiver string) bool) ([]*forge.Delivery, error) {
	var out []*forge.Delivery
	err := s.db.View(func(tx *bolt.Tx) error {
		names := namesIn(tx)
		end := u64(uint64(max(now, 0)))
		c := tx.Bucket(bucketDeliveriesDue).Cursor()
		for k, v := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0; k, v = c.Next() {
			repo, receiver, indexed := parseDueValue(v)
			if indexed && take != nil && !take(repo, receiver) {
				continue
			}
			d, ok, err := getDelivery(tx, names, k[8:])
			if err != nil {
				return err
			}
			if !ok || !d.Due(now) || !indexed && take != nil && !take(d.RepoID, d.Receiver()) {
				continue
			}
			out = append(out, d)
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
		names := namesIn(tx)
		return tx.Bucket(bucketDeliveries).ForEach(func(k, _ []byte) error {
			d, _, err := getDelivery(tx, names, k)
			if err != nil {
				return err
			}
			if d.LeaseUntil != 0 {
				out = append(out, d)
			}
			return nil
		})
	})
	return out, err
}

// UpdateDelivery implements forge.DeliveryStore.
func (s *Store) UpdateDelivery(ctx context.Context, id string, fn func(*forge.Delivery) error) (*forge.Delivery, error) {
	var d *forge.Delivery
	err := s.db.Update(func(tx *bolt.Tx) error {
		due := tx.Bucket(bucketDeliveriesDue)
		var ok bool
		var err error
		d, ok, err = getDelivery(tx, namesIn(tx), []byte(id))
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound("Webhook delivery not found")
		}
		if waiting(d) {
			if err := due.Delete(dueKey(d)); err != nil {
				return err
			}
		}
		hook, repoID, repoName, seq := d.WebhookID, d.RepoID, d.RepoName, d.Seq
		if err := fn(d); err != nil {
			return err
		}
		d.ID, d.WebhookID, d.RepoID, d.RepoName, d.Seq = id, hook, repoID, repoName, seq
		if waiting(d) {
			if err := due.Put(dueKey(d), dueValue(d)); err != nil {
				return err
			}
		}
		return putDelivery(tx, d)
	})
	if err != nil {
		return nil, err
	}
	return d, nil
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
