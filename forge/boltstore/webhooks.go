package boltstore

import (
	"bytes"
	"context"
	"slices"
	"sort"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

func webhookRepoKey(repoID, id string) []byte { return append(repoPrefix(repoID), id...) }

// getWebhook reads webhook id with its repository's current name.
func getWebhook(tx *bolt.Tx, names *repoNames, id []byte) (*forge.Webhook, bool, error) {
	var w forge.Webhook
	ok, err := getJSON(tx.Bucket(bucketWebhooks), id, &w)
	if !ok || err != nil {
		return nil, ok, err
	}
	w.RepoName = names.of(w.RepoID)
	return &w, true, nil
}

// CreateWebhook implements forge.WebhookStore.
func (s *Store) CreateWebhook(ctx context.Context, w *forge.Webhook) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWebhooks)
		if b.Get([]byte(w.ID)) != nil {
			return forge.Conflict("Webhook already exists")
		}
		if w.RepoID == "" {
			id, err := repoIDOf(tx, w.RepoName)
			if err != nil {
				return err
			}
			w.RepoID = id
		}
		if err := tx.Bucket(bucketWebhooksByRepo).Put(webhookRepoKey(w.RepoID, w.ID), nil); err != nil {
			return err
		}
		stored := *w
		stored.RepoName = ""
		return putJSON(b, []byte(w.ID), &stored)
	})
}

// GetWebhook implements forge.WebhookStore.
func (s *Store) GetWebhook(ctx context.Context, id string) (*forge.Webhook, error) {
	var w *forge.Webhook
	err := s.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		w, ok, err = getWebhook(tx, namesIn(tx), []byte(id))
		if err == nil && !ok {
			err = forge.NotFound("Webhook not found")
		}
		return err
	})
	return w, err
}

// ListWebhooks implements forge.WebhookStore.
func (s *Store) ListWebhooks(ctx context.Context, repo string) ([]*forge.Webhook, error) {
	var out []*forge.Webhook
	err := s.db.View(func(tx *bolt.Tx) error {
		repoID, err := repoIDOf(tx, repo)
		if err != nil {
			return nil // no webhooks
		}
		names := namesIn(tx)
		for _, id := range webhookIDs(tx, repoID) {
			w, ok, err := getWebhook(tx, names, id)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, w)
			}
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out, err
}

// webhookIDs returns the ids of the webhooks of the repository with
// repoID from the index.
func webhookIDs(tx *bolt.Tx, repoID string) [][]byte {
	var ids [][]byte
	prefix := repoPrefix(repoID)
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
	if err := tx.Bucket(bucketWebhooksByRepo).Delete(webhookRepoKey(w.RepoID, id)); err != nil {
		return err
	}
	return b.Delete([]byte(id))
}

// cascadeWebhooks deletes the webhooks (and deliveries) of a repository
// (repoCascade).
func cascadeWebhooks(tx *bolt.Tx, repoID string) error {
	for _, id := range webhookIDs(tx, repoID) {
		if err := deleteWebhookTx(tx, string(id)); err != nil {
			return err
		}
	}
	return nil
}
