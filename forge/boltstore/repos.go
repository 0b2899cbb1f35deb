package boltstore

import (
	"context"
	"path/filepath"

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
	return getRecord[forge.Repo](s.db, bucketRepos, name, "Repository not found")
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

// DeleteRepo implements forge.RepoStore: the record and everything
// attached to it (every repoCascade) go in one transaction.
func (s *Store) DeleteRepo(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRepos)
		if b.Get([]byte(name)) == nil {
			return forge.NotFound("Repository not found")
		}
		if err := b.Delete([]byte(name)); err != nil {
			return err
		}
		for _, cascade := range s.cascades() {
			if err := cascade(tx, name, ""); err != nil {
				return err
			}
		}
		return nil
	})
}

// RenameRepo implements forge.RepoStore: the record moves to newName with
// everything attached to it (every repoCascade) in one transaction. A Path
// of the usual form <dir>/<oldName>.git becomes <dir>/<newName>.git; the
// caller moves the directory.
// ErrNotFound if oldName does not exist; ErrConflict ("A repository with
// that name already exists") if newName does.
func (s *Store) RenameRepo(ctx context.Context, oldName, newName string) (*forge.Repo, error) {
	var r forge.Repo
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRepos)
		ok, err := getJSON(b, []byte(oldName), &r)
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound("Repository not found")
		}
		if b.Get([]byte(newName)) != nil {
			return forge.Conflict("A repository with that name already exists")
		}
		r.Name = newName
		if filepath.Base(r.Path) == oldName+".git" {
			r.Path = filepath.Join(filepath.Dir(r.Path), newName+".git")
		}
		if err := b.Delete([]byte(oldName)); err != nil {
			return err
		}
		if err := putJSON(b, []byte(newName), &r); err != nil {
			return err
		}
		for _, cascade := range s.cascades() {
			if err := cascade(tx, oldName, newName); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// repoCascade keeps one entity's records attached to their repository:
// called inside the transaction that deletes repository name (newName ==
// "") or renames it to newName. Each entity keyed by repository name adds
// its own cascade to repoCascades.
type repoCascade func(tx *bolt.Tx, name, newName string) error

var repoCascades = []repoCascade{cascadeRuns}

func repoPrefix(name string) []byte { return append([]byte(name), 0) }
