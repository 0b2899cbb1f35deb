package boltstore

import (
	"bytes"
	"context"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// CreateRun implements forge.RunStore.
func (s *Store) CreateRun(ctx context.Context, r *forge.Run) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b.Get([]byte(r.ID)) != nil {
			return forge.Conflict("Workflow run already exists")
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		if err := tx.Bucket(bucketRunsByRepo).Put(runRepoKey(r.RepoName, seq), []byte(r.ID)); err != nil {
			return err
		}
		if r.Status == forge.RunQueued {
			if err := tx.Bucket(bucketQueue).Put(u64(seq), []byte(r.ID)); err != nil {
				return err
			}
		}
		return putJSON(b, []byte(r.ID), r)
	})
}

// GetRun implements forge.RunStore.
func (s *Store) GetRun(ctx context.Context, id string) (*forge.Run, error) {
	return getRecord[forge.Run](s.db, bucketRuns, id, "Workflow run not found")
}

// UpdateRun implements forge.RunStore.
func (s *Store) UpdateRun(ctx context.Context, id string, fn func(*forge.Run) error) (*forge.Run, error) {
	var r forge.Run
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		ok, err := getJSON(b, []byte(id), &r)
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound("Workflow run not found")
		}
		repo, seq := r.RepoName, r.Seq
		if err := fn(&r); err != nil {
			return err
		}
		r.ID, r.Seq, r.RepoName = id, seq, repo
		r.QueuePosition = 0
		q := tx.Bucket(bucketQueue)
		if r.Status == forge.RunQueued {
			err = q.Put(u64(seq), []byte(id))
		} else {
			err = q.Delete(u64(seq))
		}
		if err != nil {
			return err
		}
		return putJSON(b, []byte(id), &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// ListRuns implements forge.RunStore.
func (s *Store) ListRuns(ctx context.Context, repo string, limit int) ([]*forge.Run, error) {
	var out []*forge.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		prefix := repoPrefix(repo)
		c := tx.Bucket(bucketRunsByRepo).Cursor()
		// Seek past the last key of the prefix, then walk backwards: newest first.
		k, v := c.Seek(append(slices.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			var r forge.Run
			ok, err := getJSON(runs, v, &r)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, &r)
			}
			if limit > 0 && len(out) >= limit {
				break
			}
		}
		return nil
	})
	return out, err
}

// RunsWithStatus implements forge.RunStore.
func (s *Store) RunsWithStatus(ctx context.Context, states ...forge.RunStatus) ([]*forge.Run, error) {
	var out []*forge.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		return b.ForEach(func(k, _ []byte) error {
			var r forge.Run
			if _, err := getJSON(b, k, &r); err != nil {
				return err
			}
			if slices.Contains(states, r.Status) {
				out = append(out, &r)
			}
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, err
}

// QueuedRuns implements forge.RunStore.
func (s *Store) QueuedRuns(ctx context.Context) ([]*forge.Run, error) {
	var out []*forge.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		runs := tx.Bucket(bucketRuns)
		return tx.Bucket(bucketQueue).ForEach(func(_, id []byte) error {
			var r forge.Run
			ok, err := getJSON(runs, id, &r)
			if ok && err == nil {
				out = append(out, &r)
			}
			return err
		})
	})
	return out, err
}

// DeleteRun implements forge.RunStore.
func (s *Store) DeleteRun(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return deleteRunTx(tx, id) })
}

func deleteRunTx(tx *bolt.Tx, id string) error {
	b := tx.Bucket(bucketRuns)
	var r forge.Run
	ok, err := getJSON(b, []byte(id), &r)
	if err != nil {
		return err
	}
	if !ok {
		return forge.NotFound("Workflow run not found")
	}
	if err := tx.Bucket(bucketQueue).Delete(u64(r.Seq)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketRunsByRepo).Delete(runRepoKey(r.RepoName, r.Seq)); err != nil {
		return err
	}
	return b.Delete([]byte(id))
}

func runRepoKey(repo string, seq uint64) []byte { return append(repoPrefix(repo), u64(seq)...) }

// cascadeRuns deletes or moves the runs of a repository (repoCascade).
func cascadeRuns(tx *bolt.Tx, name, newName string) error {
	idx := tx.Bucket(bucketRunsByRepo)
	var keys [][]byte
	var ids []string
	prefix := repoPrefix(name)
	c := idx.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, slices.Clone(k))
		ids = append(ids, string(v))
	}
	runs := tx.Bucket(bucketRuns)
	for i, id := range ids {
		if newName == "" {
			if err := deleteRunTx(tx, id); err != nil {
				return err
			}
			continue
		}
		var r forge.Run
		if _, err := getJSON(runs, []byte(id), &r); err != nil {
			return err
		}
		r.RepoName = newName
		if err := putJSON(runs, []byte(id), &r); err != nil {
			return err
		}
		if err := idx.Delete(keys[i]); err != nil {
			return err
		}
		if err := idx.Put(runRepoKey(newName, r.Seq), []byte(id)); err != nil {
			return err
		}
	}
	return nil
}
