package repos

import (
	"context"
	"fmt"

	"github.com/kod-forge/kod/forge"
)

// CheckBranch is ErrInvalid "Invalid branch name" or "Branch '<b>' does
// not exist" unless refs/heads/<branch> of repo names a commit.
func (s *Service) CheckBranch(ctx context.Context, repo *forge.Repo, branch string) error {
	if !forge.ValidBranchName(branch) {
		return forge.Invalid("Invalid branch name")
	}
	_, ok, err := s.cfg.Git.ResolveCommit(ctx, s.Dir(repo), "refs/heads/"+branch)
	if err != nil {
		return err
	}
	if !ok {
		return forge.Invalid("Branch '%s' does not exist", branch)
	}
	return nil
}

// SetDefaultBranch points HEAD of repo at branch (Kod API: PATCH
// /repos/:name {defaultBranch}, kod's addition): what clones check out and
// where schedules run. by is who asked, for the log. The caller checks the
// branch first (CheckBranch); errors are git's.
func (s *Service) SetDefaultBranch(ctx context.Context, repo *forge.Repo, branch string, by *forge.Principal) error {
	if err := s.cfg.Git.SetHead(ctx, s.Dir(repo), branch); err != nil {
		return fmt.Errorf("setting the default branch of %s: %w", repo.Name, err)
	}
	s.log.Info("default branch set", "repo", repo.Name, "branch", branch, "token", by.TokenID)
	return nil
}
