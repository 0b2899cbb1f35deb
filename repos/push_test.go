package repos

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/runner/workflow"
)

// gitIn runs git in dir with a fixed identity and no user config.
func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// bareWith creates <reposDir>/<name>.git (HEAD on main) holding one commit
// of files on each of branches, and returns the commit.
func bareWith(t *testing.T, reposDir, name string, files map[string]string, branches ...string) string {
	t.Helper()
	work := t.TempDir()
	gitIn(t, work, "init", "-q", "-b", "work")
	for p, content := range files {
		os.MkdirAll(filepath.Join(work, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(work, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitIn(t, work, "add", "-A")
	gitIn(t, work, "commit", "-q", "--allow-empty", "-m", "c")
	dir := filepath.Join(reposDir, name+".git")
	if err := (&gitsvc.Git{}).InitBare(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	for _, b := range branches {
		gitIn(t, work, "push", "-q", dir, "work:refs/heads/"+b)
	}
	return gitIn(t, work, "rev-parse", "HEAD")
}

// TestWorkflowFilesPerFileErrors: a workflow file over the size limit comes
// back with its own error; the other files are read.
func TestWorkflowFilesPerFileErrors(t *testing.T) {
	t.Parallel()
	repos := t.TempDir()
	commit := bareWith(t, repos, "r", map[string]string{
		".kod/workflows/ci.toml":      "[[steps]]\nname = \"a\"\nrun = \"true\"\n",
		".kod/workflows/big.toml":     "# " + strings.Repeat("x", workflow.MaxFileSize) + "\n",
		".kod/workflows/.hidden.toml": "ignored",
		".kod/workflows/notes.md":     "ignored",
	}, "main")
	src := &Source{Git: &gitsvc.Git{}, ReposDir: repos}
	files, err := src.WorkflowFiles(context.Background(), "r", commit)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != ".kod/workflows/big.toml" || files[1].Path != ".kod/workflows/ci.toml" {
		t.Fatalf("files: %+v", files)
	}
	if files[1].Err != nil || len(files[1].Data) == 0 {
		t.Errorf("ci.toml: %v", files[1].Err)
	}
	_, err = files[0].Parse(workflow.Options{})
	if want := ".kod/workflows/big.toml: file is 1048579 bytes; a workflow file may be at most 1048576"; err == nil || err.Error() != want {
		t.Errorf("big.toml: %v, want %q", err, want)
	}
}

// TestFixHead: a push that leaves HEAD naming no branch points it at main
// or master when there is one; otherwise at the first pushed branch only
// for the owner or an admin; a collaborator's push leaves it and says so.
func TestFixHead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	repos := t.TempDir()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := New(Config{Store: store, Git: &gitsvc.Git{}, ReposDir: repos, Log: slog.New(slog.DiscardHandler)})
	owner := &forge.Principal{TokenID: "owner", Permissions: []forge.Permission{forge.PermRepoWrite}}
	alice := &forge.Principal{TokenID: "alice1", Username: "alice", Permissions: []forge.Permission{forge.PermRepoWrite}}
	admin := &forge.Principal{TokenID: "adm", Permissions: []forge.Permission{forge.PermAdmin}}
	created := func(u string) forge.RefUpdate {
		return forge.RefUpdate{Old: gitsvc.ZeroOID, New: strings.Repeat("a", 40), Ref: "refs/heads/" + u}
	}
	for _, tc := range []struct {
		name     string
		branches []string // in the repository after the push
		p        *forge.Principal
		pushed   []string
		head     string
		msg      string
	}{
		{"collaborator's feature branch", []string{"feature"}, alice, []string{"feature"}, "main", `no default branch yet (HEAD names "main", which does not exist)`},
		{"collaborator pushes master", []string{"feature", "master"}, alice, []string{"master"}, "master", "default branch set to master"},
		{"main wins over master", []string{"main", "master", "x"}, alice, []string{"x"}, "main", ""},
		{"owner's first branch", []string{"develop", "feature"}, owner, []string{"feature", "develop"}, "feature", "default branch set to feature"},
		{"admin's first branch", []string{"trunk"}, admin, []string{"trunk"}, "trunk", "default branch set to trunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := strings.ReplaceAll(tc.name, " ", "-")
			name = strings.ReplaceAll(name, "'", "")
			if err := store.CreateRepo(ctx, &forge.Repo{Name: name, OwnerTokenID: "owner", Collaborators: []forge.Collaborator{{Username: "alice"}}}); err != nil {
				t.Fatal(err)
			}
			bareWith(t, repos, name, nil, tc.branches...)
			var updates []forge.RefUpdate
			for _, b := range tc.pushed {
				updates = append(updates, created(b))
			}
			repo, err := store.GetRepo(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			msgs := h.fixHead(ctx, repo, tc.p, updates)
			if got := gitIn(t, filepath.Join(repos, name+".git"), "symbolic-ref", "HEAD"); got != "refs/heads/"+tc.head {
				t.Errorf("HEAD = %s, want %s", got, tc.head)
			}
			if got := strings.Join(msgs, "\n"); (tc.msg == "") != (got == "") || !strings.Contains(got, tc.msg) {
				t.Errorf("messages %q, want %q", got, tc.msg)
			}
		})
	}
}
