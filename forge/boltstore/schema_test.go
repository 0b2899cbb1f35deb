package boltstore

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/kod-forge/kod/forge"
)

// fixtureDB writes the kod.db of the e2e upgrade fixture (made by the
// release before repository ids, schema 1) to a temp dir and returns its
// path.
func fixtureDB(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "e2e", "testdata", "upgrade-schema1.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no data/kod.db in the fixture: %v", err)
		}
		if filepath.Clean(h.Name) != filepath.Join("data", "kod.db") {
			continue
		}
		path := filepath.Join(t.TempDir(), "kod.db")
		out, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(out, tr)
		}
		if err == nil {
			err = out.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
}

func schemaAt(t *testing.T, path string) string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	db.View(func(tx *bolt.Tx) error { v = string(tx.Bucket(bucketMeta).Get(metaSchema)); return nil })
	return v
}

// TestMigrateSchema1: the fixture's database is copied beside itself, then
// migrated: repositories get ids and everything attached is found under
// its repository, with secrets bound to the old name so they still open.
func TestMigrateSchema1(t *testing.T) {
	t.Parallel()
	path := fixtureDB(t)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if backups, _ := filepath.Glob(path + ".schema1-*.bak"); len(backups) != 1 || schemaAt(t, backups[0]) != "" {
		t.Fatalf("backup copies %v", backups)
	}
	repos, err := s.ListRepos(ctx)
	if err != nil || len(repos) != 2 || repos[0].Name != "app" || repos[1].Name != "lib" || repos[0].ID == "" {
		t.Fatalf("repos %+v %v", repos, err)
	}
	app := repos[0]
	if byID, err := s.GetRepoByID(ctx, app.ID); err != nil || byID.Name != "app" || len(byID.Collaborators) != 1 {
		t.Errorf("app by id: %+v %v", byID, err)
	}
	runs, err := s.ListRuns(ctx, "app", 0)
	if err != nil || len(runs) < 2 {
		t.Fatalf("runs %d %v", len(runs), err)
	}
	for _, r := range runs {
		if r.RepoID != app.ID || r.RepoName != "app" {
			t.Errorf("run %s: repo %q %q", r.ID, r.RepoID, r.RepoName)
		}
	}
	secrets, err := s.ListSecrets(ctx, "app")
	if err != nil || len(secrets) != 1 || secrets[0].RepoID != app.ID || secrets[0].Binding != "app" || secrets[0].SealedFor() != "app" {
		t.Errorf("secrets %+v %v", secrets, err)
	}
	box, err := forge.OpenSecretBox(ctx, s, "upgrade fixture encryption key", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := forge.RepoSecrets(ctx, s, box, "app"); err != nil || len(got) != 1 || got[0].Value != "fixture-secret-value" {
		t.Errorf("secrets open: %+v %v", got, err)
	}
	hooks, err := s.ListWebhooks(ctx, "app")
	if err != nil || len(hooks) != 1 || hooks[0].RepoID != app.ID {
		t.Fatalf("webhooks %+v %v", hooks, err)
	}
	ds, err := s.ListDeliveries(ctx, hooks[0].ID, 0)
	if err != nil || len(ds) == 0 {
		t.Fatalf("deliveries %d %v", len(ds), err)
	}
	pending := 0
	for _, d := range ds {
		if d.RepoID != app.ID || d.RepoName != "app" {
			t.Errorf("delivery %s: repo %q %q", d.ID, d.RepoID, d.RepoName)
		}
		if d.Status == forge.DeliveryPending {
			pending++
		}
	}
	due, err := s.DueDeliveries(ctx, 1<<62, 0, nil)
	if err != nil || len(due) != pending {
		t.Errorf("due deliveries %d, pending %d: %v", len(due), pending, err)
	}
	// With the key at hand the secret is bound to the id (once).
	if rebound, failed, err := s.RebindSecrets(ctx, box.Reseal); err != nil || rebound != 1 || failed != 0 {
		t.Fatalf("rebind: %d %d %v", rebound, failed, err)
	}
	if again, _, _ := s.RebindSecrets(ctx, box.Reseal); again != 0 {
		t.Errorf("rebound %d secrets a second time", again)
	}
	if secrets, _ := s.ListSecrets(ctx, "app"); secrets[0].Binding != "" || secrets[0].SealedFor() != app.ID {
		t.Errorf("after rebinding: %+v", secrets[0])
	}
	if got, err := forge.RepoSecrets(ctx, s, box, "app"); err != nil || len(got) != 1 || got[0].Value != "fixture-secret-value" {
		t.Errorf("rebound secrets open: %+v %v", got, err)
	}
	// The migrated store renames in one step, attached records follow.
	if _, err := s.RenameRepo(ctx, "app", "app2"); err != nil {
		t.Fatal(err)
	}
	if got, err := forge.RepoSecrets(ctx, s, box, "app2"); err != nil || len(got) != 1 {
		t.Errorf("secrets after a rename: %+v %v", got, err)
	}
	if moved, _ := s.ListRuns(ctx, "app2", 0); len(moved) != len(runs) {
		t.Errorf("runs after a rename: %d, want %d", len(moved), len(runs))
	}
}

// TestSchemaVersions: a new database is created at SchemaVersion with no
// copy; reopening changes nothing; a newer one is refused and left as it
// is.
func TestSchemaVersions(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kod.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if v := schemaAt(t, path); v != "2" {
		t.Errorf("new database at schema %q", v)
	}
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if backups, _ := filepath.Glob(path + ".*.bak"); len(backups) != 0 {
		t.Errorf("copies of a current database: %v", backups)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaSchema, []byte("3")) })
	db.Close()
	if _, err := Open(path); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "schema 3; this binary knows schema 2") {
		t.Errorf("newer database: %v", err)
	}
	if v := schemaAt(t, path); v != "3" {
		t.Errorf("a refused database was changed to schema %q", v)
	}
}
