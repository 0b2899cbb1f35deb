package boltstore

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// CreateRepo implements forge.RepoStore.
func (s *Store) CreateRepo(ctx context.Context, r *forge.Repo) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRepos)
		if b.Get([]byte(r.Name)) != nil {
			return forge.Conflict("Repository already exists")
		}
		return putJSON(b, []byte(r.Name), r)
	})
}

// GetRepo implements forge.RepoStore.
func (s *Store) GetRepo(ctx context.Context, name string) (*forge.Repo, error) {
	var r forge.Repo
	err := s.db.View(func(tx *bolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bucketRepos), []byte(name), &r)
		if err == nil && !ok {
			err = forge.NotFound("Repository not found")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// ListRepos implements forge.RepoStore.
func (s *Store) ListRepos(ctx context.Context) ([]*forge.Repo, error) {
	var out []*forge.Repo
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRepos).ForEach(func(k, v []byte) error {
			var r forge.Repo
			if _, err := getJSON(tx.Bucket(bucketRepos), k, &r); err != nil {
				return err
			}
			out = append(out, &r)
			return nil
		})
	})
	return out, err
}

// UpdateRepo implements forge.RepoStore.
func (s *Store) UpdateRepo(ctx context.Context, name string, fn func(*forge.Repo) error) (*forge.Repo, error) {
	var r forge.Repo
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRepos)
		ok, err := getJSON(b, []byte(name), &r)
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound("Repository not found")
		}
		if err := fn(&r); err != nil {
			return err
		}
		r.Name = name
		return putJSON(b, []byte(name), &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// DeleteRepo implements forge.RepoStore: the record, its runs, their index
// and queue entries go in one transaction.
func (s *Store) DeleteRepo(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRepos)
		if b.Get([]byte(name)) == nil {
			return forge.NotFound("Repository not found")
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		var ids []string
		prefix := repoPrefix(name)
		c := tx.Bucket(bucketRunsByRepo).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			ids = append(ids, string(v))
		}
		for _, id := range ids {
			if err := deleteRunTx(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
}

func repoPrefix(name string) []byte { return append([]byte(name), 0) }
