// Package boltstore implements forge.Store on one bbolt file: one bucket per
// entity with JSON values, index buckets updated in the same transaction, and
// big-endian sequence keys where order matters.
package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

var (
	bucketMeta       = []byte("meta")
	bucketRepos      = []byte("repos")        // repo id -> Repo (schema 1: name -> Repo)
	bucketRepoNames  = []byte("repo_names")   // name -> repo id
	bucketTokens     = []byte("tokens")       // id -> Token
	bucketTokenHash  = []byte("token_hashes") // sha256 hex -> id
	bucketRuns       = []byte("runs")         // id -> Run
	bucketRunsByRepo = []byte("runs_by_repo") // repo id \x00 seq(8) -> id
	bucketQueue      = []byte("run_queue")    // seq(8) -> id

	bucketSecrets          = []byte("secrets")            // repo id \x00 name -> Secret (sealed)
	bucketWebhooks         = []byte("webhooks")           // id -> Webhook
	bucketWebhooksByRepo   = []byte("webhooks_by_repo")   // repo id \x00 id -> ""
	bucketDeliveries       = []byte("deliveries")         // id -> Delivery
	bucketDeliveriesByHook = []byte("deliveries_by_hook") // webhook id \x00 seq(8) -> id
	bucketDeliveriesDue    = []byte("deliveries_due")     // nextAttemptAt ms(8) + id -> "" (pending, not leased)

	bucketKeys   = []byte("ssh_keys")    // id -> SSHKey
	bucketKeyFPs = []byte("ssh_key_fps") // fingerprint -> id

	bucketCaches    = []byte("caches")    // repo id \x00 branch \x00 key -> Cache
	bucketArtifacts = []byte("artifacts") // run id \x00 name -> Artifact
)

var allBuckets = [][]byte{bucketMeta, bucketRepos, bucketRepoNames, bucketTokens, bucketTokenHash, bucketRuns, bucketRunsByRepo, bucketQueue,
	bucketSecrets, bucketWebhooks, bucketWebhooksByRepo, bucketDeliveries, bucketDeliveriesByHook, bucketDeliveriesDue,
	bucketKeys, bucketKeyFPs, bucketCaches, bucketArtifacts}

// Store is the bbolt implementation of forge.Store. It is safe for
// concurrent use; bbolt serialises writers.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the bbolt file at path with mode 0600. It
// fails after 5 s if another process holds the file (bbolt's exclusive
// lock), with an error saying so. A file of an older schema is upgraded in
// place (see migrate): a copy of it is written beside it first, then the
// upgrade runs in one transaction. A file of a newer schema than this
// binary knows is refused (ErrNewerSchema), untouched.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating data dir: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("opening %s: the database is locked by another kod server: %w", path, err)
		}
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := upgrade(db, path); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the bbolt handle for consistent snapshots (backup).
func (s *Store) DB() *bolt.DB { return s.db }

// InstanceID implements forge.MetaStore.
func (s *Store) InstanceID(ctx context.Context) (string, error) {
	var id string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		if v := b.Get([]byte("instance")); v != nil {
			id = string(v)
			return nil
		}
		id = forge.NewID()
		return b.Put([]byte("instance"), []byte(id))
	})
	return id, err
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	data := b.Get(key)
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decoding record %q: %w", key, err)
	}
	return true, nil
}

// getRecord reads the JSON record key of bucket into a new T in a read
// transaction; a missing record is forge.ErrNotFound with notFound as its
// user message.
func getRecord[T any](db *bolt.DB, bucket []byte, key, notFound string) (*T, error) {
	var v T
	err := db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucket), []byte(key), &v)
		if err == nil && !ok {
			err = forge.NotFound("%s", notFound)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func u64(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

var _ forge.Store = (*Store)(nil)
