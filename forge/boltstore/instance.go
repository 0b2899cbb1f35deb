package boltstore

import (
	"context"

	bolt "go.etcd.io/bbolt"
)

// ResetInstanceID forgets the instance id, so the next InstanceID call
// creates a new one. A restored copy of a database calls it: it must never
// sweep the containers of the server it was copied from, which may still run
// on the same engine.
func (s *Store) ResetInstanceID(ctx context.Context) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete([]byte("instance"))
	})
}

// metaWebhooksPaused marks a data dir whose webhooks must not deliver yet
// (a restored backup): "1" while paused, absent otherwise.
var metaWebhooksPaused = []byte("webhooks_paused")

// WebhooksPaused reports whether webhook deliveries are paused (see
// SetWebhooksPaused).
func (s *Store) WebhooksPaused(ctx context.Context) (bool, error) {
	paused := false
	err := s.db.View(func(tx *bolt.Tx) error {
		paused = tx.Bucket(bucketMeta).Get(metaWebhooksPaused) != nil
		return nil
	})
	return paused, err
}

// SetWebhooksPaused pauses or resumes webhook deliveries for this data
// dir: while paused, no delivery is recorded or sent (a restored backup
// must not deliver to the original server's receivers until told to).
func (s *Store) SetWebhooksPaused(ctx context.Context, paused bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if paused {
			return b.Put(metaWebhooksPaused, []byte("1"))
		}
		return b.Delete(metaWebhooksPaused)
	})
}
