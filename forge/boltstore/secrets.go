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

// SetSecretBox gives the store the key it needs to move secrets when their
// repository is renamed: a sealed value is bound to its repository name, so
// RenameRepo re-seals each one for the new name inside its transaction. A
// repository with secrets cannot be renamed without it.
func (s *Store) SetSecretBox(b *forge.SecretBox) { s.box.Store(b) }

// cascades are the repoCascades plus those of this file's entities that
// need the store (the secret box).
func (s *Store) cascades() []repoCascade {
	return append(slices.Clone(repoCascades), s.cascadeSecrets, cascadeWebhooks)
}

func secretKey(repo, name string) []byte { return append(repoPrefix(repo), name...) }

// PutSecret implements forge.SecretStore.
func (s *Store) PutSecret(ctx context.Context, sec *forge.Secret) (bool, error) {
	created := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSecrets)
		key := secretKey(sec.RepoName, sec.Name)
		var old forge.Secret
		ok, err := getJSON(b, key, &old)
		if err != nil {
			return err
		}
		if ok {
			sec.CreatedAt = old.CreatedAt
		}
		created = !ok
		return putJSON(b, key, sec)
	})
	return created, err
}

// ListSecrets implements forge.SecretStore.
func (s *Store) ListSecrets(ctx context.Context, repo string) ([]*forge.Secret, error) {
	var out []*forge.Secret
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := repoPrefix(repo)
		c := tx.Bucket(bucketSecrets).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var sec forge.Secret
			if err := json.Unmarshal(v, &sec); err != nil {
				return fmt.Errorf("decoding secret record: %w", err)
			}
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
		key := secretKey(repo, name)
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

// cascadeSecrets deletes the secrets of a repository, or re-seals them for
// its new name (repoCascade). Without a usable key the rename fails and
// nothing moves.
func (s *Store) cascadeSecrets(tx *bolt.Tx, name, newName string) error {
	b := tx.Bucket(bucketSecrets)
	prefix := repoPrefix(name)
	var keys, values [][]byte
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, slices.Clone(k))
		values = append(values, slices.Clone(v))
	}
	box := s.box.Load()
	for i, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
		if newName == "" {
			continue
		}
		var sec forge.Secret
		if err := json.Unmarshal(values[i], &sec); err != nil {
			return fmt.Errorf("decoding secret record: %w", err)
		}
		if box == nil {
			return forge.Conflict("Repository secrets cannot be moved to the new name: no encryption key is configured")
		}
		sealed, err := box.Reseal(name, newName, sec.Name, sec.Sealed)
		if err != nil {
			return forge.Conflict("Repository secrets cannot be moved to the new name: secret %s cannot be decrypted with the configured encryption key", sec.Name)
		}
		sec.RepoName, sec.Sealed = newName, sealed
		if err := putJSON(b, secretKey(newName, sec.Name), &sec); err != nil {
			return err
		}
	}
	return nil
}
