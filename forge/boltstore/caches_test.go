package boltstore

import (
	"context"
	"errors"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// TestCacheRecords: records are per repository, branch and key, listed
// least recently used first, touched, deleted one by one and with their
// repository; a repository whose id shares a prefix keeps its own.
func TestCacheRecords(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustRepos(t, s, "a", "b")
	a, _ := s.GetRepo(ctx, "a")
	b, _ := s.GetRepo(ctx, "b")
	put := func(repo *forge.Repo, branch, key string, used forge.Millis) {
		t.Helper()
		if err := s.PutCache(ctx, &forge.Cache{RepoID: repo.ID, Branch: branch, Key: key, Size: 10, CreatedAt: 1, LastUsedAt: used, Layers: []string{"l-" + branch + key}}); err != nil {
			t.Fatal(err)
		}
	}
	put(a, "main", "go", 30)
	put(a, "feat", "go", 10)
	put(a, "main", "npm", 20)
	put(b, "main", "go", 5)
	if err := s.PutCache(ctx, &forge.Cache{RepoID: "nope", Branch: "main", Key: "go"}); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("cache of a missing repository: %v", err)
	}
	keys := func(repo *forge.Repo) []string {
		list, err := s.ListCaches(ctx, repo.ID)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list {
			out = append(out, c.Branch+"/"+c.Key)
		}
		return out
	}
	if got := keys(a); !slices.Equal(got, []string{"feat/go", "main/npm", "main/go"}) {
		t.Errorf("LRU order: %v", got)
	}
	if err := s.TouchCache(ctx, a.ID, "feat", "go", 40); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchCache(ctx, a.ID, "gone", "go", 40); err != nil {
		t.Errorf("touching a missing record: %v", err)
	}
	if got := keys(a); !slices.Equal(got, []string{"main/npm", "main/go", "feat/go"}) {
		t.Errorf("after touch: %v", got)
	}
	c, err := s.GetCache(ctx, a.ID, "main", "go")
	if err != nil || !slices.Equal(c.Layers, []string{"l-maingo"}) {
		t.Errorf("GetCache: %+v, %v", c, err)
	}
	if c, err := s.DeleteCache(ctx, a.ID, "main", "npm"); err != nil || c.Key != "npm" {
		t.Errorf("DeleteCache: %+v, %v", c, err)
	}
	if _, err := s.DeleteCache(ctx, a.ID, "main", "npm"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("second DeleteCache: %v", err)
	}
	if err := s.DeleteRepo(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := keys(a); len(got) != 0 {
		t.Errorf("caches of a deleted repository: %v", got)
	}
	if got := keys(b); !slices.Equal(got, []string{"main/go"}) {
		t.Errorf("caches of another repository: %v", got)
	}
}

// TestArtifactRecords: records are per run, sorted by name, refused for a
// missing run or a bad name, and deleted with their run and repository.
func TestArtifactRecords(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustRepos(t, s, "a")
	runs := []string{forge.NewID(), forge.NewID(), forge.NewID()}
	for _, id := range runs {
		if err := s.CreateRun(ctx, &forge.Run{ID: id, RepoName: "a", Status: forge.RunCompleted}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"dist/app.tar.gz", "coverage.tar.gz"} {
			if err := s.PutArtifact(ctx, &forge.Artifact{RunID: id, Name: name, Size: 3, SHA256: "abc", Step: "build"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, bad := range []string{"", "/etc/passwd", "a/../b", "a//b", "a\\b"} {
		if err := s.PutArtifact(ctx, &forge.Artifact{RunID: runs[0], Name: bad}); !errors.Is(err, forge.ErrInvalid) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	if err := s.PutArtifact(ctx, &forge.Artifact{RunID: "missing", Name: "x"}); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("artifact of a missing run: %v", err)
	}
	list, err := s.ListArtifacts(ctx, runs[0])
	if err != nil || len(list) != 2 || list[0].Name != "coverage.tar.gz" || list[1].RunID != runs[0] {
		t.Errorf("ListArtifacts: %+v, %v", list, err)
	}
	if a, err := s.GetArtifact(ctx, runs[0], "dist/app.tar.gz"); err != nil || a.Step != "build" {
		t.Errorf("GetArtifact: %+v, %v", a, err)
	}
	if err := s.DeleteRun(ctx, runs[0]); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListArtifacts(ctx, runs[0]); len(list) != 0 {
		t.Errorf("artifacts of a deleted run: %v", list)
	}
	if list, _ := s.ListArtifacts(ctx, runs[1]); len(list) != 2 {
		t.Errorf("artifacts of another run: %v", list)
	}
	if err := s.DeleteRepo(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.ListArtifacts(ctx, runs[2]); len(list) != 0 {
		t.Errorf("artifacts of a deleted repository's run: %v", list)
	}
}

// TestNewBucketsInAnOlderFile: a schema-2 file written before caches and
// artifacts existed opens, keeps its data and gets the new buckets.
func TestNewBucketsInAnOlderFile(t *testing.T) {
	s, path := open(t)
	mustRepos(t, s, "a")
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketCaches); err != nil {
			return err
		}
		return tx.DeleteBucket(bucketArtifacts)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.GetRepo(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutCache(context.Background(), &forge.Cache{RepoID: a.ID, Branch: "main", Key: "k"}); err != nil {
		t.Errorf("PutCache in an upgraded file: %v", err)
	}
}
