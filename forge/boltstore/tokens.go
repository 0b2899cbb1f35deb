package boltstore

import (
	"context"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// CreateToken implements forge.TokenStore.
func (s *Store) CreateToken(ctx context.Context, t *forge.Token) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, h := tx.Bucket(bucketTokens), tx.Bucket(bucketTokenHash)
		if b.Get([]byte(t.ID)) != nil || h.Get([]byte(t.Hash)) != nil {
			return forge.Conflict("Token already exists")
		}
		if err := h.Put([]byte(t.Hash), []byte(t.ID)); err != nil {
			return err
		}
		return putJSON(b, []byte(t.ID), t)
	})
}

// TokenByHash implements forge.TokenStore.
func (s *Store) TokenByHash(ctx context.Context, hash string) (*forge.Token, error) {
	var t forge.Token
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketTokenHash).Get([]byte(hash))
		if id == nil {
			return forge.NotFound("Token not found")
		}
		ok, err := getJSON(tx.Bucket(bucketTokens), id, &t)
		if err == nil && !ok {
			err = forge.NotFound("Token not found")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// GetToken implements forge.TokenStore.
func (s *Store) GetToken(ctx context.Context, id string) (*forge.Token, error) {
	return getRecord[forge.Token](s.db, bucketTokens, id, "Token not found")
}

// ListTokens implements forge.TokenStore.
func (s *Store) ListTokens(ctx context.Context) ([]*forge.Token, error) {
	var out []*forge.Token
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		return b.ForEach(func(k, _ []byte) error {
			var t forge.Token
			if _, err := getJSON(b, k, &t); err != nil {
				return err
			}
			out = append(out, &t)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, err
}

// DeleteToken implements forge.TokenStore.
func (s *Store) DeleteToken(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var t forge.Token
		ok, err := getJSON(b, []byte(id), &t)
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound("Token not found")
		}
		if err := tx.Bucket(bucketTokenHash).Delete([]byte(t.Hash)); err != nil {
			return err
		}
		return b.Delete([]byte(id))
	})
}

// CountTokens implements forge.TokenStore.
func (s *Store) CountTokens(ctx context.Context) (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketTokens).Stats().KeyN
		return nil
	})
	return n, err
}

// TouchToken implements forge.TokenStore.
func (s *Store) TouchToken(ctx context.Context, id string, at forge.Millis) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketTokens)
		var t forge.Token
		ok, err := getJSON(b, []byte(id), &t)
		if err != nil || !ok {
			return err
		}
		t.LastUsedAt = at
		return putJSON(b, []byte(id), &t)
	})
}
