package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

func artifactKey(runID, name string) []byte { return []byte(runID + "\x00" + name) }

// PutArtifact implements forge.ArtifactStore.
func (s *Store) PutArtifact(ctx context.Context, a *forge.Artifact) error {
	if err := forge.ValidateArtifactName(a.Name); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketRuns).Get([]byte(a.RunID)) == nil {
			return forge.NotFound("Workflow run not found")
		}
		return putJSON(tx.Bucket(bucketArtifacts), artifactKey(a.RunID, a.Name), a)
	})
}

// GetArtifact implements forge.ArtifactStore.
func (s *Store) GetArtifact(ctx context.Context, runID, name string) (*forge.Artifact, error) {
	a, err := getRecord[forge.Artifact](s.db, bucketArtifacts, string(artifactKey(runID, name)), "Artifact not found")
	if err != nil {
		return nil, err
	}
	a.RunID = runID
	return a, nil
}

// ListArtifacts implements forge.ArtifactStore: sorted by name (the key
// order).
func (s *Store) ListArtifacts(ctx context.Context, runID string) ([]*forge.Artifact, error) {
	out := []*forge.Artifact{}
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := repoPrefix(runID)
		c := tx.Bucket(bucketArtifacts).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var a forge.Artifact
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decoding artifact %q: %w", k, err)
			}
			a.RunID = runID
			out = append(out, &a)
		}
		return nil
	})
	return out, err
}

// deleteArtifactsTx deletes the artifact records of a run (with the run).
func deleteArtifactsTx(tx *bolt.Tx, runID string) error {
	return deletePrefix(tx.Bucket(bucketArtifacts), repoPrefix(runID))
}
