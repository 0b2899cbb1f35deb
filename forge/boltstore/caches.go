package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

func cacheKey(repoID, branch, key string) []byte {
	return []byte(repoID + "\x00" + branch + "\x00" + key)
}

const cacheNotFound = "Cache not found"

// GetCache implements forge.CacheStore.
func (s *Store) GetCache(ctx context.Context, repoID, branch, key string) (*forge.Cache, error) {
	return getRecord[forge.Cache](s.db, bucketCaches, string(cacheKey(repoID, branch, key)), cacheNotFound)
}

// ListCaches implements forge.CacheStore: least recently used first, ties
// by branch and key.
func (s *Store) ListCaches(ctx context.Context, repoID string) ([]*forge.Cache, error) {
	var out []*forge.Cache
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := repoPrefix(repoID)
		c := tx.Bucket(bucketCaches).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var rec forge.Cache
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decoding cache %q: %w", k, err)
			}
			out = append(out, &rec)
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].LastUsedAt != out[j].LastUsedAt {
			return out[i].LastUsedAt < out[j].LastUsedAt
		}
		if out[i].Branch != out[j].Branch {
			return out[i].Branch < out[j].Branch
		}
		return out[i].Key < out[j].Key
	})
	return out, err
}

// PutCache implements forge.CacheStore.
func (s *Store) PutCache(ctx context.Context, c *forge.Cache) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRepos).Get([]byte(c.RepoID)) == nil {
			return forge.NotFound("Repository not found")
		}
		return putJSON(tx.Bucket(bucketCaches), cacheKey(c.RepoID, c.Branch, c.Key), c)
	})
}

// TouchCache implements forge.CacheStore.
func (s *Store) TouchCache(ctx context.Context, repoID, branch, key string, at forge.Millis) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCaches)
		var c forge.Cache
		ok, err := getJSON(b, cacheKey(repoID, branch, key), &c)
		if !ok || err != nil {
			return err
		}
		c.LastUsedAt = at
		return putJSON(b, cacheKey(repoID, branch, key), &c)
	})
}

// DeleteCache implements forge.CacheStore.
func (s *Store) DeleteCache(ctx context.Context, repoID, branch, key string) (*forge.Cache, error) {
	var c forge.Cache
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCaches)
		ok, err := getJSON(b, cacheKey(repoID, branch, key), &c)
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound(cacheNotFound)
		}
		return b.Delete(cacheKey(repoID, branch, key))
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// cascadeCaches deletes the cache records of a repository (repoCascade);
// the layers they name are the caller's to remove from the backend.
func cascadeCaches(tx *bolt.Tx, repoID string) error {
	return deletePrefix(tx.Bucket(bucketCaches), repoPrefix(repoID))
}

// deletePrefix deletes every key of b starting with prefix.
func deletePrefix(b *bolt.Bucket, prefix []byte) error {
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
