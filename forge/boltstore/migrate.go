package boltstore

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// migrateRepoIDs upgrades schema 1 (everything keyed by repository name) to
// schema 2: every repository gets an id, the repos bucket is keyed by it
// with names in repo_names, and runs, secrets, webhooks and deliveries
// refer to the id (their indexes rebuilt). Secrets keep their sealed
// values: a value sealed for the repository's name records that name as
// its Binding, so it still opens without the key being at hand here.
// Records of a repository that no longer exists are dropped.
func migrateRepoIDs(tx *bolt.Tx) error {
	ids, err := migrateRepos(tx)
	if err != nil {
		return err
	}
	for _, step := range []func(*bolt.Tx, map[string]string) error{migrateRuns, migrateSecrets, migrateWebhooks, migrateDeliveries} {
		if err := step(tx, ids); err != nil {
			return err
		}
	}
	return nil
}

// entries reads every key and value of bucket (copies, so the bucket may
// then be rewritten).
func entries(tx *bolt.Tx, bucket []byte) (keys, values [][]byte) {
	_ = tx.Bucket(bucket).ForEach(func(k, v []byte) error {
		keys = append(keys, append([]byte(nil), k...))
		values = append(values, append([]byte(nil), v...))
		return nil
	})
	return keys, values
}

// recreate empties bucket.
func recreate(tx *bolt.Tx, bucket []byte) (*bolt.Bucket, error) {
	if err := tx.DeleteBucket(bucket); err != nil {
		return nil, err
	}
	return tx.CreateBucket(bucket)
}

// migrateRepos re-keys the repos bucket by new ids and fills the name
// index; it returns name -> id.
func migrateRepos(tx *bolt.Tx) (map[string]string, error) {
	_, values := entries(tx, bucketRepos)
	b, err := recreate(tx, bucketRepos)
	if err != nil {
		return nil, err
	}
	names := tx.Bucket(bucketRepoNames)
	ids := map[string]string{}
	for _, v := range values {
		var r forge.Repo
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("decoding a repository record: %w", err)
		}
		r.ID = forge.NewID()
		ids[r.Name] = r.ID
		if err := names.Put([]byte(r.Name), []byte(r.ID)); err != nil {
			return nil, err
		}
		if err := putJSON(b, []byte(r.ID), &r); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

func migrateRuns(tx *bolt.Tx, ids map[string]string) error {
	keys, values := entries(tx, bucketRuns)
	idx, err := recreate(tx, bucketRunsByRepo)
	if err != nil {
		return err
	}
	for i, v := range values {
		var r forge.Run
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decoding run %s: %w", keys[i], err)
		}
		repoID, ok := ids[r.RepoName]
		if !ok {
			if err := tx.Bucket(bucketQueue).Delete(u64(r.Seq)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketRuns).Delete(keys[i]); err != nil {
				return err
			}
			continue
		}
		r.RepoID = repoID
		if err := idx.Put(runRepoKey(repoID, r.Seq), []byte(r.ID)); err != nil {
			return err
		}
		if err := putRun(tx, &r); err != nil {
			return err
		}
	}
	return nil
}

func migrateSecrets(tx *bolt.Tx, ids map[string]string) error {
	_, values := entries(tx, bucketSecrets)
	b, err := recreate(tx, bucketSecrets)
	if err != nil {
		return err
	}
	for _, v := range values {
		var sec forge.Secret
		if err := json.Unmarshal(v, &sec); err != nil {
			return fmt.Errorf("decoding a secret record: %w", err)
		}
		repoID, ok := ids[sec.RepoName]
		if !ok {
			continue
		}
		sec.RepoID, sec.Binding, sec.RepoName = repoID, sec.RepoName, ""
		if err := putJSON(b, secretKey(repoID, sec.Name), &sec); err != nil {
			return err
		}
	}
	return nil
}

func migrateWebhooks(tx *bolt.Tx, ids map[string]string) error {
	keys, values := entries(tx, bucketWebhooks)
	idx, err := recreate(tx, bucketWebhooksByRepo)
	if err != nil {
		return err
	}
	b := tx.Bucket(bucketWebhooks)
	for i, v := range values {
		var w forge.Webhook
		if err := json.Unmarshal(v, &w); err != nil {
			return fmt.Errorf("decoding webhook %s: %w", keys[i], err)
		}
		repoID, ok := ids[w.RepoName]
		if !ok {
			if err := deleteWebhookTx(tx, w.ID); err != nil {
				return err
			}
			continue
		}
		w.RepoID, w.RepoName = repoID, ""
		if err := idx.Put(webhookRepoKey(repoID, w.ID), nil); err != nil {
			return err
		}
		if err := putJSON(b, keys[i], &w); err != nil {
			return err
		}
	}
	return nil
}

func migrateDeliveries(tx *bolt.Tx, ids map[string]string) error {
	keys, values := entries(tx, bucketDeliveries)
	due, err := recreate(tx, bucketDeliveriesDue)
	if err != nil {
		return err
	}
	for i, v := range values {
		var d forge.Delivery
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("decoding delivery %s: %w", keys[i], err)
		}
		repoID, ok := ids[d.RepoName]
		if !ok {
			if err := tx.Bucket(bucketDeliveriesByHook).Delete(deliveryHookKey(d.WebhookID, d.Seq)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketDeliveries).Delete(keys[i]); err != nil {
				return err
			}
			continue
		}
		d.RepoID = repoID
		if waiting(&d) {
			if err := due.Put(dueKey(&d), dueValue(&d)); err != nil {
				return err
			}
		}
		if err := putDelivery(tx, &d); err != nil {
			return err
		}
	}
	return nil
}
