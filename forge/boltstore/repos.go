package boltstore

import (
	"context"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// CreateRepo implements forge.RepoStore: the record under its id (given
// here when r.ID is "") and its name in the index, in one transaction.
func (s *Store) CreateRepo(ctx context.Context, r *forge.Repo) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		names := tx.Bucket(bucketRepoNames)
		if names.Get([]byte(r.Name)) != nil {
			return forge.Conflict("Repository already exists")
		}
		if r.ID == "" {
			r.ID = forge.NewID()
		}
		b := tx.Bucket(bucketRepos)
		if b.Get([]byte(r.ID)) != nil {
			return forge.Conflict("Repository already exists")
		}
		if err := names.Put([]byte(r.Name), []byte(r.ID)); err != nil {
			return err
		}
		return putJSON(b, []byte(r.ID), r)
	})
}

// GetRepo implements forge.RepoStore.
func (s *Store) GetRepo(ctx context.Context, name string) (*forge.Repo, error) {
	var r *forge.Repo
	err := s.db.View(func(tx *bolt.Tx) (err error) { r, err = repoByName(tx, name); return err })
	return r, err
}

// GetRepoByID implements forge.RepoStore.
func (s *Store) GetRepoByID(ctx context.Context, id string) (*forge.Repo, error) {
	return getRecord[forge.Repo](s.db, bucketRepos, id, "Repository not found")
}

// ListRepos implements forge.RepoStore: sorted by name (the index's order).
func (s *Store) ListRepos(ctx context.Context) ([]*forge.Repo, error) {
	var out []*forge.Repo
	err := s.db.View(func(tx *bolt.Tx) error {
		repos := tx.Bucket(bucketRepos)
		return tx.Bucket(bucketRepoNames).ForEach(func(_, id []byte) error {
			var r forge.Repo
			ok, err := getJSON(repos, id, &r)
			if ok {
				out = append(out, &r)
			}
			return err
		})
	})
	return out, err
}

// UpdateRepo implements forge.RepoStore.
func (s *Store) UpdateRepo(ctx context.Context, name string, fn func(*forge.Repo) error) (*forge.Repo, error) {
	var r *forge.Repo
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if r, err = repoByName(tx, name); err != nil {
			return err
		}
		id := r.ID
		if err := fn(r); err != nil {
			return err
		}
		r.ID, r.Name = id, name
		return putJSON(tx.Bucket(bucketRepos), []byte(id), r)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteRepo implements forge.RepoStore: the record, its name and
// everything attached to it (every repoCascade) go in one transaction.
func (s *Store) DeleteRepo(ctx context.Context, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		r, err := repoByName(tx, name)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketRepoNames).Delete([]byte(name)); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRepos).Delete([]byte(r.ID)); err != nil {
			return err
		}
		for _, cascade := range repoCascades {
			if err := cascade(tx, r.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// RenameRepo implements forge.RepoStore: one small transaction that gives
// the record newName and moves its entry in the name index; runs, secrets,
// webhooks and deliveries refer to the id and stay as they are. A Path of
// the usual form <dir>/<oldName>.git becomes <dir>/<newName>.git; the
// caller moves the directory. ErrNotFound if oldName does not exist;
// ErrConflict ("A repository with that name already exists") if newName
// does.
func (s *Store) RenameRepo(ctx context.Context, oldName, newName string) (*forge.Repo, error) {
	var r *forge.Repo
	err := s.db.Update(func(tx *bolt.Tx) (err error) {
		if r, err = repoByName(tx, oldName); err != nil {
			return err
		}
		names := tx.Bucket(bucketRepoNames)
		if names.Get([]byte(newName)) != nil {
			return forge.Conflict("A repository with that name already exists")
		}
		r.Name = newName
		if filepath.Base(r.Path) == oldName+".git" {
			r.Path = filepath.Join(filepath.Dir(r.Path), newName+".git")
		}
		if err := names.Delete([]byte(oldName)); err != nil {
			return err
		}
		if err := names.Put([]byte(newName), []byte(r.ID)); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bucketRepos), []byte(r.ID), r)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// repoCascade removes one entity's records of the repository with id,
// inside the transaction that deletes it. Each entity attached to
// repositories adds its own.
type repoCascade func(tx *bolt.Tx, repoID string) error

var repoCascades = []repoCascade{cascadeRuns, cascadeSecrets, cascadeWebhooks, cascadeCaches}

func repoPrefix(key string) []byte { return append([]byte(key), 0) }

// repoByName reads the record named name through the index; ErrNotFound
// "Repository not found".
func repoByName(tx *bolt.Tx, name string) (*forge.Repo, error) {
	id := tx.Bucket(bucketRepoNames).Get([]byte(name))
	var r forge.Repo
	ok := false
	var err error
	if id != nil {
		ok, err = getJSON(tx.Bucket(bucketRepos), id, &r)
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, forge.NotFound("Repository not found")
	}
	return &r, nil
}

// repoIDOf resolves a repository name to its id; ErrNotFound
// "Repository not found".
func repoIDOf(tx *bolt.Tx, name string) (string, error) {
	id := tx.Bucket(bucketRepoNames).Get([]byte(name))
	if id == nil {
		return "", forge.NotFound("Repository not found")
	}
	return string(id), nil
}

// repoNames gives the current name of repositories by id within one
// transaction, reading each record once. A repository that no longer
// exists has the name "".
type repoNames struct {
	tx    *bolt.Tx
	cache map[string]string
}

func namesIn(tx *bolt.Tx) *repoNames { return &repoNames{tx: tx, cache: map[string]string{}} }

func (n *repoNames) of(id string) string {
	if name, ok := n.cache[id]; ok {
		return name
	}
	var r struct {
		Name string `json:"name"`
	}
	if _, err := getJSON(n.tx.Bucket(bucketRepos), []byte(id), &r); err != nil {
		r.Name = ""
	}
	n.cache[id] = r.Name
	return r.Name
}
