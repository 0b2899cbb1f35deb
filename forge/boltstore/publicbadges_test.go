package boltstore

import (
	"context"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// TestRepoRecordWithoutPublicBadges: a repository record written before
// publicBadges existed (no such key in its JSON) reads as private badges,
// keeps every other field, and takes the new setting, which survives a
// reopen of the file.
func TestRepoRecordWithoutPublicBadges(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	// Records are keyed by id with a name index (schema 2): write the old
	// JSON (no publicBadges key) under an id and index it by name.
	old := `{"id":"r1legacy","name":"legacy","createdAt":1700000000000,"path":"/srv/repos/legacy.git","ownerTokenId":"t1","protectedBranches":["main"],"collaborators":[{"username":"alice","addedAt":1700000000001}]}`
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRepoNames).Put([]byte("legacy"), []byte("r1legacy")); err != nil {
			return err
		}
		return tx.Bucket(bucketRepos).Put([]byte("r1legacy"), []byte(old))
	}); err != nil {
		t.Fatal(err)
	}
	r, err := s.GetRepo(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if r.PublicBadges || r.OwnerTokenID != "t1" || !r.IsProtected("main") || !r.HasCollaborator("alice") {
		t.Fatalf("old record read as %+v", r)
	}
	if _, err := s.UpdateRepo(ctx, "legacy", func(x *forge.Repo) error { x.PublicBadges = true; return nil }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	r, err = s2.GetRepo(ctx, "legacy")
	if err != nil {
		t.Fatal(err)
	}
	if !r.PublicBadges || !r.HasCollaborator("alice") {
		t.Errorf("after the update and a reopen: %+v", r)
	}
}
