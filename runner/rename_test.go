package runner_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// renamingSource renames the repository while the run reads its workflow
// files, as PATCH /repos/:name would, and records the names it is asked for.
type renamingSource struct {
	staticSource
	store interface {
		RenameRepo(ctx context.Context, oldName, newName string) (*forge.Repo, error)
	}
	mu    sync.Mutex
	asked []string
}

func (s *renamingSource) WorkflowFiles(ctx context.Context, repo, commit string) ([]runner.File, error) {
	s.mu.Lock()
	s.asked = append(s.asked, repo)
	s.mu.Unlock()
	if _, err := s.store.RenameRepo(ctx, "repo", "renamed"); err != nil {
		return nil, err
	}
	return s.staticSource.WorkflowFiles(ctx, repo, commit)
}

func (s *renamingSource) Archive(ctx context.Context, repo, commit string, w io.Writer) error {
	s.mu.Lock()
	s.asked = append(s.asked, repo)
	s.mu.Unlock()
	return s.staticSource.Archive(ctx, repo, commit, w)
}

// A run whose repository is renamed while it runs reads the repository
// under the new name and ends recorded under it.
func TestRunFollowsRename(t *testing.T) {
	t.Parallel()
	src := &renamingSource{staticSource: staticSource{workflow: "[[steps]]\nname = \"s\"\nrun = \"true\"\n"}}
	r, store, _, done := fakeRunner(t, runner.Config{}, src, nil)
	src.store = store
	enqueue(t, r, "main")
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	run := wait(t, done)
	src.mu.Lock()
	defer src.mu.Unlock()
	if run.Status != forge.RunCompleted || run.RepoName != "renamed" || len(src.asked) != 2 || src.asked[0] != "repo" || src.asked[1] != "renamed" {
		t.Errorf("run %s in %q (%s), source asked for %v", run.Status, run.RepoName, run.Error, src.asked)
	}
}
