package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

var metaSecretKDF = []byte("secrets_kdf")

func secretKey(repoID, name string) []byte { return append(repoPrefix(repoID), name...) }

// PutSecret implements forge.SecretStore. The secret's repository is
// sec.RepoID, or else the repository named sec.RepoName (ErrNotFound if
// none).
func (s *Store) PutSecret(ctx context.Context, sec *forge.Secret) (bool, error) {
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		if sec.RepoID == "" {
			id, err := repoIDOf(tx, sec.RepoName)
			if err != nil {
				return err
			}
			sec.RepoID = id
		}
		key := secretKey(sec.RepoID, sec.Name)
		var old forge.Secret
		ok, err := getJSON(b, key, &old)
		if err != nil {
			return err
		}
		if ok {
			sec.CreatedAt = old.CreatedAt
		}
		created = !ok
		stored := *sec
		stored.RepoName = ""
		return putJSON(b, key, &stored)
	})
	return created, err
}

// ListSecrets implements forge.SecretStore.
func (s *Store) ListSecrets(ctx context.Context, repo string) ([]*forge.Secret, error) {
	var out []*forge.Secret
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := repoIDOf(tx, repo)
		if err != nil {
			return nil // no secrets
		}
		prefix := repoPrefix(id)
		c := tx.Bucket(bucketSecrets).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var sec forge.Secret
			if err := json.Unmarshal(v, &sec); err != nil {
				return fmt.Errorf("decoding secret record: %w", err)
			}
			sec.RepoName = repo
			out = append(out, &sec)
		}
		return nil
	})
	return out, err
}

// DeleteSecret implements forge.SecretStore.
func (s *Store) DeleteSecret(ctx context.Context, repo, name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		id, err := repoIDOf(tx, repo)
		if err != nil {
			return forge.NotFound("Secret not found")
		}
		key := secretKey(id, name)
		if b.Get(key) == nil {
			return forge.NotFound("Secret not found")
		}
		return b.Delete(key)
	})
}

// CountSecrets implements forge.SecretStore.
func (s *Store) CountSecrets(ctx context.Context) (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketSecrets).Stats().KeyN
		return nil
	})
	return n, err
}

// SecretKDF implements forge.SecretStore.
func (s *Store) SecretKDF(ctx context.Context, fresh forge.SecretKDF) (forge.SecretKDF, error) {
	var kdf forge.SecretKDF
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta)
		ok, err := getJSON(b, metaSecretKDF, &kdf)
		if err != nil || ok {
			return err
		}
		kdf = fresh
		return putJSON(b, metaSecretKDF, &kdf)
	})
	return kdf, err
}

// SetSecretKDF implements forge.SecretStore.
func (s *Store) SetSecretKDF(ctx context.Context, kdf forge.SecretKDF) error {
	return s.db.Update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bucketMeta), metaSecretKDF, &kdf) })
}

// cascadeSecrets deletes the secrets of a repository (repoCascade).
func cascadeSecrets(tx *bolt.Tx, repoID string) error {
	b := tx.Bucket(bucketSecrets)
	prefix := repoPrefix(repoID)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, slices.Clone(k))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// RebindSecrets seals every secret still bound to a repository name (saved
// before repositories had ids, Secret.Binding) again for its repository's
// id, in one transaction, with reseal (forge.SecretBox.Reseal). A secret
// that reseal cannot open (another key) is left as it is and counted in
// failed; the others are rebound.
func (s *Store) RebindSecrets(ctx context.Context, reseal func(oldRepo, newRepo, name, sealed string) (string, error)) (rebound, failed int, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		keys, values := entries(tx, bucketSecrets)
		for i, v := range values {
			var sec forge.Secret
			if err := json.Unmarshal(v, &sec); err != nil {
				return fmt.Errorf("decoding secret record: %w", err)
			}
			if sec.Binding == "" {
				continue
			}
			sealed, err := reseal(sec.Binding, sec.RepoID, sec.Name, sec.Sealed)
			if err != nil {
				failed++
				continue
			}
			sec.Sealed, sec.Binding = sealed, ""
			if err := putJSON(b, keys[i], &sec); err != nil {
				return err
			}
			rebound++
		}
		return nil
	})
	return rebound, failed, err
}
