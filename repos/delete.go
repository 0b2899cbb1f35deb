package repos

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"github.com/kod-forge/kod/forge"
)

// Delete removes repo: its runs are cancelled, then the record with
// everything attached, then the bare directory, the runs' logs and
// artifacts and the repository's caches. Errors
// are the store's; files that cannot be removed are logged, not returned
// (the repository is gone for users either way). ctx should not be
// cancelled with a client's request.
func (s *Service) Delete(ctx context.Context, repo *forge.Repo) error {
	runs, err := s.cfg.Store.ListRuns(ctx, repo.Name, 0)
	if err != nil {
		return err
	}
	s.cfg.Runs.CancelRepo(ctx, repo.Name)
	dropCaches := func() {}
	if s.cfg.Caches != nil {
		dropCaches = s.cfg.Caches.ForgetRepo(ctx, repo.ID)
	}
	var errs []error
	err = func() error {
		s.namesMu.Lock()
		defer s.namesMu.Unlock()
		if err := s.cfg.Store.DeleteRepo(ctx, repo.Name); err != nil {
			return err
		}
		if err := os.RemoveAll(s.Dir(repo)); err != nil {
			errs = append(errs, err)
		}
		return nil
	}()
	if err != nil {
		return err
	}
	dropCaches()
	for _, run := range runs {
		if err := os.RemoveAll(filepath.Join(s.cfg.LogsDir, run.ID)); err != nil {
			errs = append(errs, err)
		}
		if s.cfg.ArtifactsDir != "" {
			if err := os.RemoveAll(filepath.Join(s.cfg.ArtifactsDir, run.ID)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Error("removing repository files", "repo", repo.Name, "err", err)
	}
	s.log.Info("repository deleted", "repo", repo.Name)
	return nil
}
