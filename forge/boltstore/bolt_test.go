package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kod-forge/kod/forge"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kod.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestReposAndCascadingDelete(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	if err := s.CreateRepo(ctx, &forge.Repo{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRepo(ctx, &forge.Repo{Name: "a"}); !errors.Is(err, forge.ErrConflict) {
		t.Errorf("duplicate: %v", err)
	}
	s.CreateRepo(ctx, &forge.Repo{Name: "a-b"}) // shares the prefix "a"
	for _, repo := range []string{"a", "a", "a-b"} {
		if err := s.CreateRepo(ctx, &forge.Repo{Name: repo}); err != nil && !errors.Is(err, forge.ErrConflict) {
			t.Fatal(err)
		}
		if err := s.CreateRun(ctx, &forge.Run{ID: forge.NewID(), RepoName: repo, Status: forge.RunQueued}); err != nil {
			t.Fatal(err)
		}
	}
	if runs, _ := s.ListRuns(ctx, "a", 0); len(runs) != 2 || runs[0].Seq < runs[1].Seq {
		t.Errorf("runs of a, newest first: %+v", runs)
	}
	if runs, _ := s.ListRuns(ctx, "a", 1); len(runs) != 1 {
		t.Errorf("limit: %d", len(runs))
	}
	if err := s.DeleteRepo(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if runs, _ := s.ListRuns(ctx, "a", 0); len(runs) != 0 {
		t.Errorf("runs of a deleted repository remain: %d", len(runs))
	}
	q, _ := s.QueuedRuns(ctx)
	if len(q) != 1 || q[0].RepoName != "a-b" {
		t.Errorf("queue after delete: %+v", q)
	}
	if _, err := s.GetRepo(ctx, "a"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("get deleted: %v", err)
	}
}

// mustRepos creates repositories names.
func mustRepos(t *testing.T, s *Store, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := s.CreateRepo(context.Background(), &forge.Repo{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueueFollowsStatus(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	mustRepos(t, s, "r")
	var ids []string
	for range 3 {
		r := &forge.Run{ID: forge.NewID(), RepoName: "r", Status: forge.RunQueued}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if _, err := s.UpdateRun(ctx, ids[0], func(r *forge.Run) error { r.Status = forge.RunRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	q, _ := s.QueuedRuns(ctx)
	if len(q) != 2 || q[0].ID != ids[1] || q[1].ID != ids[2] {
		t.Errorf("queue: %+v", q)
	}
	// A failing update changes nothing.
	boom := errors.New("boom")
	if _, err := s.UpdateRun(ctx, ids[1], func(r *forge.Run) error { r.Status = forge.RunFailed; return boom }); !errors.Is(err, boom) {
		t.Errorf("update error: %v", err)
	}
	// The queue survives reopening the file.
	s.Close()
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	q, _ = s2.QueuedRuns(ctx)
	if len(q) != 2 || q[0].ID != ids[1] {
		t.Errorf("queue after reopen: %+v", q)
	}
	running, _ := s2.RunsWithStatus(ctx, forge.RunRunning)
	if len(running) != 1 || running[0].ID != ids[0] {
		t.Errorf("running after reopen: %+v", running)
	}
}

func TestTokensByHash(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	tok := &forge.Token{ID: "t1", Name: "n", Hash: forge.HashToken("kod_x"), Permissions: []forge.Permission{forge.PermRepoRead}}
	if err := s.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	got, err := s.TokenByHash(ctx, forge.HashToken("kod_x"))
	if err != nil || got.ID != "t1" {
		t.Fatalf("by hash: %+v %v", got, err)
	}
	if err := s.TouchToken(ctx, "t1", 42); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetToken(ctx, "t1"); got.LastUsedAt != 42 {
		t.Errorf("lastUsedAt = %d", got.LastUsedAt)
	}
	if err := s.DeleteToken(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenByHash(ctx, tok.Hash); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("deleted token still found by hash: %v", err)
	}
	if n, _ := s.CountTokens(ctx); n != 0 {
		t.Errorf("count = %d", n)
	}
}

func TestInstanceIDIsStable(t *testing.T) {
	s, _ := open(t)
	a, _ := s.InstanceID(context.Background())
	b, _ := s.InstanceID(context.Background())
	if a == "" || a != b {
		t.Errorf("instance ids %q %q", a, b)
	}
}

func TestRenameCarriesRuns(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	s.CreateRepo(ctx, &forge.Repo{Name: "old", Path: "/srv/repos/old.git", ProtectedBranches: []string{"main"}, Collaborators: []forge.Collaborator{{Username: "alice"}}})
	s.CreateRepo(ctx, &forge.Repo{Name: "taken"})
	run := &forge.Run{ID: forge.NewID(), RepoName: "old", Status: forge.RunQueued}
	s.CreateRun(ctx, run)
	if _, err := s.RenameRepo(ctx, "old", "taken"); !errors.Is(err, forge.ErrConflict) {
		t.Errorf("rename onto a taken name: %v", err)
	}
	r, err := s.RenameRepo(ctx, "old", "new")
	if err != nil || r.Name != "new" || !r.HasCollaborator("alice") || !r.IsProtected("main") || r.Path != "/srv/repos/new.git" {
		t.Fatalf("rename: %+v %v", r, err)
	}
	if got, err := s.GetRepo(ctx, "new"); err != nil || got.Path != "/srv/repos/new.git" || !got.IsProtected("main") {
		t.Errorf("stored after rename: %+v %v", got, err)
	}
	if _, err := s.GetRepo(ctx, "old"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("old name still there: %v", err)
	}
	if runs, _ := s.ListRuns(ctx, "new", 0); len(runs) != 1 || runs[0].RepoName != "new" {
		t.Errorf("runs after rename: %+v", runs)
	}
	if runs, _ := s.ListRuns(ctx, "old", 0); len(runs) != 0 {
		t.Errorf("runs left under the old name: %+v", runs)
	}
	if q, _ := s.QueuedRuns(ctx); len(q) != 1 || q[0].RepoName != "new" {
		t.Errorf("queue after rename: %+v", q)
	}
}
