package boltstore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// cheapKDF keeps tests fast; the default costs are exercised by
// TestOpenSecretBoxKeyLifecycle.
func cheapKDF() forge.SecretKDF {
	kdf := forge.NewSecretKDF()
	kdf.N = 1 << 10
	return kdf
}

func newBox(t *testing.T, key string, kdf forge.SecretKDF) *forge.SecretBox {
	t.Helper()
	box, err := forge.NewSecretBox(key, kdf)
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// repoID returns the id of repository name, creating it if needed.
func repoID(t *testing.T, s *Store, name string) string {
	t.Helper()
	r, err := s.GetRepo(context.Background(), name)
	if errors.Is(err, forge.ErrNotFound) {
		r = &forge.Repo{Name: name}
		err = s.CreateRepo(context.Background(), r)
	}
	if err != nil {
		t.Fatal(err)
	}
	return r.ID
}

func putSecret(t *testing.T, s *Store, box *forge.SecretBox, repo, name, value string) {
	t.Helper()
	sealed, err := box.Seal(repoID(t, s, repo), name, []byte(value))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSecret(context.Background(), &forge.Secret{Name: name, RepoName: repo, CreatedAt: forge.NowMillis(), UpdatedAt: forge.NowMillis(), Sealed: sealed}); err != nil {
		t.Fatal(err)
	}
}

func TestSecretsSealedAtRestAndTamperEvident(t *testing.T) {
	t.Parallel()
	s, path := open(t)
	ctx := context.Background()
	box := newBox(t, "correct horse battery staple", cheapKDF())
	putSecret(t, s, box, "app", "DEPLOY_TOKEN", "plaintext-deploy-token-1")
	putSecret(t, s, box, "app", "OTHER", "plaintext-other-value-2")
	putSecret(t, s, box, "lib", "DEPLOY_TOKEN", "plaintext-lib-token-3")

	got, err := forge.RepoSecrets(ctx, s, box, "app")
	if err != nil || len(got) != 2 || got[0].Name != "DEPLOY_TOKEN" || got[0].Value != "plaintext-deploy-token-1" {
		t.Fatalf("RepoSecrets = %+v, %v", got, err)
	}
	// Nothing readable in the file.
	s.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("plaintext-")) {
		t.Fatal("a secret value is stored in clear in the database file")
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s2.Close() })

	// Copy app/DEPLOY_TOKEN's ciphertext into app/OTHER's record and into
	// lib/DEPLOY_TOKEN's record: neither decrypts.
	list, _ := s2.ListSecrets(ctx, "app")
	stolen := list[0].Sealed
	for _, target := range []struct{ repo, name string }{{"app", "OTHER"}, {"lib", "DEPLOY_TOKEN"}} {
		if _, err := s2.PutSecret(ctx, &forge.Secret{Name: target.name, RepoName: target.repo, Sealed: stolen}); err != nil {
			t.Fatal(err)
		}
		_, err := forge.RepoSecrets(ctx, s2, box, target.repo)
		if !errors.Is(err, forge.ErrSecretKey) || !strings.Contains(err.Error(), target.name) || !strings.Contains(err.Error(), "altered") {
			t.Errorf("ciphertext moved to %s/%s: %v, want a decryption failure naming it", target.repo, target.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "plaintext") {
			t.Errorf("error leaks the value: %v", err)
		}
	}
	// A flipped byte does not decrypt either, nor does another key.
	flipped := []byte(stolen)
	flipped[len(flipped)-3] ^= 1
	appID := repoID(t, s2, "app")
	if _, err := box.Open(appID, "DEPLOY_TOKEN", stolen); err != nil {
		t.Fatalf("the stolen value opens for its own record: %v", err)
	}
	if _, err := box.Open(appID, "DEPLOY_TOKEN", string(flipped)); !errors.Is(err, forge.ErrSecretKey) {
		t.Errorf("flipped byte: %v", err)
	}
	other := newBox(t, "another key", cheapKDF())
	if _, err := other.Open(appID, "DEPLOY_TOKEN", stolen); !errors.Is(err, forge.ErrSecretKey) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := box.Open("app", "DEPLOY_TOKEN", "v9:abc"); err == nil || !strings.Contains(err.Error(), "unknown encryption scheme") {
		t.Errorf("unknown version: %v", err)
	}
	if a, _ := box.Seal("r", "n", []byte("same")); a == mustSeal(t, box, "r", "n", "same") || !strings.HasPrefix(a, "v1:") {
		t.Errorf("seal is not versioned or not randomised: %s", a)
	}
}

func mustSeal(t *testing.T, box *forge.SecretBox, repo, name, v string) string {
	s, err := box.Seal(repo, name, []byte(v))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSecretsKeepCreatedAtAndFollowTheRepository(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	box := newBox(t, "k", cheapKDF())
	for _, r := range []string{"app", "app-2"} {
		if err := s.CreateRepo(ctx, &forge.Repo{Name: r}); err != nil {
			t.Fatal(err)
		}
	}
	sealed := mustSeal(t, box, repoID(t, s, "app"), "A", "value-a")
	if created, err := s.PutSecret(ctx, &forge.Secret{Name: "A", RepoName: "app", CreatedAt: 100, UpdatedAt: 100, Sealed: sealed}); err != nil || !created {
		t.Fatal(created, err)
	}
	if created, err := s.PutSecret(ctx, &forge.Secret{Name: "A", RepoName: "app", CreatedAt: 200, UpdatedAt: 200, Sealed: sealed}); err != nil || created {
		t.Fatal(created, err)
	}
	putSecret(t, s, box, "app-2", "B", "value-b") // shares the prefix "app"
	list, _ := s.ListSecrets(ctx, "app")
	if len(list) != 1 || list[0].CreatedAt != 100 || list[0].UpdatedAt != 200 {
		t.Fatalf("after update: %+v", list)
	}

	// A rename moves nothing: the secrets refer to the repository's id, so
	// they follow it without the key and still open.
	if _, err := s.RenameRepo(ctx, "app", "web"); err != nil {
		t.Fatal(err)
	}
	got, err := forge.RepoSecrets(ctx, s, box, "web")
	if err != nil || len(got) != 1 || got[0].Value != "value-a" {
		t.Fatalf("secrets after rename: %+v %v", got, err)
	}
	if list, _ := s.ListSecrets(ctx, "app"); len(list) != 0 {
		t.Errorf("secrets left under the old name: %+v", list)
	}
	if list, _ := s.ListSecrets(ctx, "web"); list[0].CreatedAt != 100 || list[0].RepoName != "web" {
		t.Errorf("renamed record: %+v", list[0])
	}
	if err := s.DeleteRepo(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountSecrets(ctx); n != 1 {
		t.Errorf("after deleting web, %d secrets remain, want app-2's one", n)
	}
	if err := s.DeleteSecret(ctx, "app-2", "B"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSecret(ctx, "app-2", "B"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

// TestOpenSecretBoxKeyLifecycle covers start-up with the default KDF
// costs: first key, same key, missing key, wrong key, replaced key.
func TestOpenSecretBoxKeyLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	if box, err := forge.OpenSecretBox(ctx, s, "", log); box != nil || err != nil {
		t.Fatalf("no key, no secrets: %v %v", box, err)
	}
	box, err := forge.OpenSecretBox(ctx, s, "first key", log)
	if err != nil || box == nil || box.Mismatch() {
		t.Fatalf("first key: %v %v", box, err)
	}
	putSecret(t, s, box, "app", "A", "value")
	again, err := forge.OpenSecretBox(ctx, s, "first key", log)
	if err != nil || again.Mismatch() {
		t.Fatalf("same key again: %v", err)
	}
	if got, err := forge.RepoSecrets(ctx, s, again, "app"); err != nil || got[0].Value != "value" {
		t.Fatalf("same key opens: %v %v", got, err)
	}
	if _, err := forge.OpenSecretBox(ctx, s, "", log); err == nil || !strings.Contains(err.Error(), "KOD_ENCRYPTION_KEY") {
		t.Errorf("secrets without a key must refuse to start, naming the setting: %v", err)
	}
	wrong, err := forge.OpenSecretBox(ctx, s, "second key", log)
	if err != nil || !wrong.Mismatch() {
		t.Fatalf("wrong key: %v mismatch=%v", err, wrong != nil && wrong.Mismatch())
	}
	if _, err := wrong.Seal("app", "B", []byte("x")); !errors.Is(err, forge.ErrSecretKey) {
		t.Errorf("sealing with a mismatched key: %v", err)
	}
	_, err = forge.RepoSecrets(ctx, s, wrong, "app")
	if !errors.Is(err, forge.ErrSecretKey) || !strings.Contains(err.Error(), "KOD_ENCRYPTION_KEY") {
		t.Errorf("opening with the wrong key: %v", err)
	}
	// With every secret gone, a new key is adopted.
	if err := s.DeleteSecret(ctx, "app", "A"); err != nil {
		t.Fatal(err)
	}
	adopted, err := forge.OpenSecretBox(ctx, s, "second key", log)
	if err != nil || adopted.Mismatch() {
		t.Fatalf("new key without secrets: %v", err)
	}
	if again, _ := forge.OpenSecretBox(ctx, s, "second key", log); again.Mismatch() {
		t.Error("adopted key is not remembered")
	}
}
