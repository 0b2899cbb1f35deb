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
