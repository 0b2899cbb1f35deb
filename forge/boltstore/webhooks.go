package boltstore

import (
	"bytes"
	"context"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

func webhookRepoKey(repo, id string) []byte { return append(repoPrefix(repo), id...) }

// CreateWebhook implements forge.WebhookStore.
func (s *Store) CreateWebhook(ctx context.Context, w *forge.Webhook) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b.Get([]byte(w.ID)) != nil {
			return forge.Conflict("Webhook already exists")
		}
		if err := tx.Bucket(bucketWebhooksByRepo).Put(webhookRepoKey(w.RepoName, w.ID), nil); err != nil {
			return err
		}
		return putJSON(b, []byte(w.ID), w)
	})
}

// GetWebhook implements forge.WebhookStore.
func (s *Store) GetWebhook(ctx context.Context, id string) (*forge.Webhook, error) {
	return getRecord[forge.Webhook](s.db, bucketWebhooks, id, "Webhook not found")
}

// ListWebhooks implements forge.WebhookStore.
func (s *Store) ListWebhooks(ctx context.Context, repo string) ([]*forge.Webhook, error) {
	var out []*forge.Webhook
	err := s.db.View(func(tx *bolt.Tx) error {
		hooks := tx.Bucket(bucketWebhooks)
		for _, id := range webhookIDs(tx, repo) {
			var w forge.Webhook
			ok, err := getJSON(hooks, id, &w)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, &w)
			}
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, err
}

// webhookIDs returns the ids of repo's webhooks from the index.
func webhookIDs(tx *bolt.Tx, repo string) [][]byte {
	var ids [][]byte
	prefix := repoPrefix(repo)
	c := tx.Bucket(bucketWebhooksByRepo).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		ids = append(ids, slices.Clone(k[len(prefix):]))
	}
	return ids
}

// DeleteWebhook implements forge.WebhookStore.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return deleteWebhookTx(tx, id) })
}

func deleteWebhookTx(tx *bolt.Tx, id string) error {
	b := tx.Bucket(bucketWebhooks)
	var w forge.Webhook
	ok, err := getJSON(b, []byte(id), &w)
	if err != nil {
		return err
	}
	if !ok {
		return forge.NotFound("Webhook not found")
	}
	for _, did := range deliveryIDs(tx, id) {
		if err := deleteDeliveryTx(tx, did); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bucketWebhooksByRepo).Delete(webhookRepoKey(w.RepoName, id)); err != nil {
		return err
	}
	return b.Delete([]byte(id))
}

// cascadeWebhooks deletes the webhooks (and deliveries) of a repository, or
// moves them to its new name (repoCascade).
func cascadeWebhooks(tx *bolt.Tx, name, newName string) error {
	hooks, idx := tx.Bucket(bucketWebhooks), tx.Bucket(bucketWebhooksByRepo)
	for _, id := range webhookIDs(tx, name) {
		if newName == "" {
			if err := deleteWebhookTx(tx, string(id)); err != nil {
				return err
			}
			continue
		}
		var w forge.Webhook
		if _, err := getJSON(hooks, id, &w); err != nil {
			return err
		}
		w.RepoName = newName
		if err := putJSON(hooks, id, &w); err != nil {
			return err
		}
		if err := idx.Delete(webhookRepoKey(name, string(id))); err != nil {
			return err
		}
		if err := idx.Put(webhookRepoKey(newName, string(id)), nil); err != nil {
			return err
		}
		if err := renameDeliveries(tx, string(id), newName); err != nil {
			return err
		}
	}
	return nil
}
