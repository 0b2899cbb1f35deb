package boltstore

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout of the database this binary writes, stored
// in the meta bucket under "schema". 1 (no value): repositories and
// everything attached keyed by repository name (kod before repository ids).
// 2: repositories keyed by a stable id, names in an index.
const SchemaVersion = 2

var metaSchema = []byte("schema")

// ErrNewerSchema is returned by Open for a database written by a newer kod:
// this binary would not understand it, and refuses before changing it.
var ErrNewerSchema = errors.New("the database was written by a newer version of kod")

// migrations[v] upgrades a database of schema v to v+1 inside the given
// transaction.
var migrations = map[int]func(tx *bolt.Tx) error{
	1: migrateRepoIDs,
}

// schemaOf reads the schema version of tx's database: 0 for an empty one
// (a new file), 1 for one from before versions were stored.
func schemaOf(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	v := meta.Get(metaSchema)
	if v == nil {
		return 1, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return 0, fmt.Errorf("unreadable schema version %q", v)
	}
	return n, nil
}

// upgrade creates the buckets of a new database, or brings an older one to
// SchemaVersion: a copy of the file is written beside it first
// (<path>.schema<N>-<unix time>.bak, taken inside a read transaction, so
// consistent), then every migration runs in one write transaction with
// the new version, so a failure leaves the file as it was.
func upgrade(db *bolt.DB, path string) error {
	var version int
	if err := db.View(func(tx *bolt.Tx) (err error) { version, err = schemaOf(tx); return err }); err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	if version > SchemaVersion {
		return fmt.Errorf("opening %s: %w (schema %d; this binary knows schema %d and older): run a newer kod, or restore a backup made by this version", path, ErrNewerSchema, version, SchemaVersion)
	}
	if version != 0 && version < SchemaVersion {
		backup := fmt.Sprintf("%s.schema%d-%d.bak", path, version, time.Now().Unix())
		if err := db.View(func(tx *bolt.Tx) error { return tx.CopyFile(backup, 0o600) }); err != nil {
			return fmt.Errorf("copying %s to %s before upgrading it: %w", path, backup, err)
		}
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		for v := max(version, 1); v < SchemaVersion && version != 0; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("upgrading from schema %d: %w", v, err)
			}
		}
		return tx.Bucket(bucketMeta).Put(metaSchema, []byte(strconv.Itoa(SchemaVersion)))
	})
	if err != nil {
		return fmt.Errorf("initialising %s: %w", path, err)
	}
	return nil
}
