package boltstore

import (
	"context"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// CreateKey implements forge.KeyStore: the record and its fingerprint index
// entry are written in one transaction, so two users adding the same key at
// once cannot both succeed.
func (s *Store) CreateKey(ctx context.Context, k *forge.SSHKey) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, fps := tx.Bucket(bucketKeys), tx.Bucket(bucketKeyFPs)
		if fps.Get([]byte(k.Fingerprint)) != nil {
			return forge.Conflict("SSH key already exists")
		}
		if b.Get([]byte(k.ID)) != nil {
			return forge.Conflict("SSH key id already exists")
		}
		if err := fps.Put([]byte(k.Fingerprint), []byte(k.ID)); err != nil {
			return err
		}
		return putJSON(b, []byte(k.ID), k)
	})
}

// GetKey implements forge.KeyStore.
func (s *Store) GetKey(ctx context.Context, id string) (*forge.SSHKey, error) {
	var k forge.SSHKey
	err := s.db.View(func(tx *bolt.Tx) error { return getKey(tx, []byte(id), &k) })
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// KeyByFingerprint implements forge.KeyStore.
func (s *Store) KeyByFingerprint(ctx context.Context, fp string) (*forge.SSHKey, error) {
	var k forge.SSHKey
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketKeyFPs).Get([]byte(fp))
		if id == nil {
			return forge.NotFound("SSH key not found")
		}
		return getKey(tx, id, &k)
	})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys implements forge.KeyStore.
func (s *Store) ListKeys(ctx context.Context, username string) ([]*forge.SSHKey, error) {
	out := []*forge.SSHKey{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketKeys)
		return b.ForEach(func(k, _ []byte) error {
			var key forge.SSHKey
			if _, err := getJSON(b, k, &key); err != nil {
				return err
			}
			if username == "" || key.Username == username {
				out = append(out, &key)
			}
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, err
}

// DeleteKey implements forge.KeyStore: the record and its fingerprint
// index entry go together.
func (s *Store) DeleteKey(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		var k forge.SSHKey
		if err := getKey(tx, []byte(id), &k); err != nil {
			return err
		}
		if err := tx.Bucket(bucketKeyFPs).Delete([]byte(k.Fingerprint)); err != nil {
			return err
		}
		return tx.Bucket(bucketKeys).Delete([]byte(id))
	})
}

func getKey(tx *bolt.Tx, id []byte, k *forge.SSHKey) error {
	ok, err := getJSON(tx.Bucket(bucketKeys), id, k)
	if err == nil && !ok {
		err = forge.NotFound("SSH key not found")
	}
	return err
}
