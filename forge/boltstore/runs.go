package boltstore

import (
	"bytes"
	"context"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// runRecord is a run as stored: the forge.Run fields (without the
// repository's name, which a rename changes) and the repository's id.
type runRecord struct {
	forge.Run
	RepoID string `json:"repoId"`
}

// getRun reads run id, with its repository's current name from names.
func getRun(tx *bolt.Tx, names *repoNames, id []byte) (*forge.Run, bool, error) {
	var rec runRecord
	ok, err := getJSON(tx.Bucket(bucketRuns), id, &rec)
	if !ok || err != nil {
		return nil, ok, err
	}
	r := rec.Run
	r.RepoID, r.RepoName = rec.RepoID, names.of(rec.RepoID)
	r.UpgradeSteps() // records written before per-step state
	return &r, true, nil
}

func putRun(tx *bolt.Tx, r *forge.Run) error {
	rec := runRecord{Run: *r, RepoID: r.RepoID}
	rec.Run.RepoName = ""
	return putJSON(tx.Bucket(bucketRuns), []byte(r.ID), &rec)
}

// CreateRun implements forge.RunStore. The run's repository is r.RepoID,
// or else the repository named r.RepoName (ErrNotFound if none).
func (s *Store) CreateRun(ctx context.Context, r *forge.Run) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRuns)
		if b.Get([]byte(r.ID)) != nil {
			return forge.Conflict("Workflow run already exists")
		}
		if r.RepoID == "" {
			id, err := repoIDOf(tx, r.RepoName)
			if err != nil {
				return err
			}
			r.RepoID = id
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		r.Seq = seq
		if err := tx.Bucket(bucketRunsByRepo).Put(runRepoKey(r.RepoID, seq), []byte(r.ID)); err != nil {
			return err
		}
		if r.Status == forge.RunQueued {
			if err := tx.Bucket(bucketQueue).Put(u64(seq), []byte(r.ID)); err != nil {
				return err
			}
		}
		return putRun(tx, r)
	})
}

// GetRun implements forge.RunStore.
func (s *Store) GetRun(ctx context.Context, id string) (*forge.Run, error) {
	var r *forge.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		r, ok, err = getRun(tx, namesIn(tx), []byte(id))
		if err == nil && !ok {
			err = forge.NotFound("Workflow run not found")
		}
		return err
	})
	return r, err
}

// UpdateRun implements forge.RunStore.
func (s *Store) UpdateRun(ctx context.Context, id string, fn func(*forge.Run) error) (*forge.Run, error) {
	var r *forge.Run
	err := s.db.Update(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		r, ok, err = getRun(tx, namesIn(tx), []byte(id))
		if err != nil {
			return err
		}
		if !ok {
			return forge.NotFound("Workflow run not found")
		}
		repoID, repoName, seq := r.RepoID, r.RepoName, r.Seq
		if err := fn(r); err != nil {
			return err
		}
		r.ID, r.Seq, r.RepoID, r.RepoName = id, seq, repoID, repoName
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
		return putRun(tx, r)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// ListRuns implements forge.RunStore; a repository that does not exist has
// no runs.
func (s *Store) ListRuns(ctx context.Context, repo string, limit int) ([]*forge.Run, error) {
	var out []*forge.Run
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := repoIDOf(tx, repo)
		if err != nil {
			return nil
		}
		names := namesIn(tx)
		prefix := repoPrefix(id)
		c := tx.Bucket(bucketRunsByRepo).Cursor()
		// Seek past the last key of the prefix, then walk backwards: newest first.
		k, v := c.Seek(append(slices.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		if k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			r, ok, err := getRun(tx, names, v)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, r)
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
		names := namesIn(tx)
		return tx.Bucket(bucketRuns).ForEach(func(k, _ []byte) error {
			r, _, err := getRun(tx, names, k)
			if err != nil {
				return err
			}
			if slices.Contains(states, r.Status) {
				out = append(out, r)
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
		names := namesIn(tx)
		return tx.Bucket(bucketQueue).ForEach(func(_, id []byte) error {
			r, ok, err := getRun(tx, names, id)
			if ok && err == nil {
				out = append(out, r)
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
	var rec runRecord
	ok, err := getJSON(tx.Bucket(bucketRuns), []byte(id), &rec)
	if err != nil {
		return err
	}
	if !ok {
		return forge.NotFound("Workflow run not found")
	}
	if err := tx.Bucket(bucketQueue).Delete(u64(rec.Seq)); err != nil {
		return err
	}
	if err := tx.Bucket(bucketRunsByRepo).Delete(runRepoKey(rec.RepoID, rec.Seq)); err != nil {
		return err
	}
	if err := deleteArtifactsTx(tx, id); err != nil {
		return err
	}
	return tx.Bucket(bucketRuns).Delete([]byte(id))
}

func runRepoKey(repoID string, seq uint64) []byte { return append(repoPrefix(repoID), u64(seq)...) }

// cascadeRuns deletes the runs of a repository (repoCascade).
func cascadeRuns(tx *bolt.Tx, repoID string) error {
	var ids []string
	prefix := repoPrefix(repoID)
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
}
