package repos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// Create validates name, stores the record owned by owner (its token, and
// its username for transports without tokens) and creates the bare
// repository with kod's hooks. The record is stored first (so two
// creations of one name cannot both win); a failure undoes it and never
// touches a directory that existed before. Errors: ErrInvalid (name),
// ErrConflict ("Repository already exists", also when an unrelated
// directory of that name exists on disk).
func (s *Service) Create(ctx context.Context, name string, owner *forge.Principal) (*forge.Repo, error) {
	dir, err := s.newRepoDir(name)
	if err != nil {
		return nil, err
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	if _, err := os.Lstat(dir); err == nil {
		return nil, forge.Conflict("Repository already exists")
	}
	repo := newRepoRecord(name, dir, owner)
	if err := s.cfg.Store.CreateRepo(ctx, repo); err != nil {
		return nil, err
	}
	if err := s.initRepoDir(ctx, dir); err != nil {
		if delErr := s.cfg.Store.DeleteRepo(context.WithoutCancel(ctx), name); delErr != nil {
			err = errors.Join(err, delErr)
		}
		return nil, fmt.Errorf("creating repository %s: %w", name, err)
	}
	s.log.Info("repository created", "repo", name, "owner", owner.TokenID)
	return repo, nil
}

// ValidateName is ErrInvalid unless name is a valid repository name (Kod's
// rule) whose directory stays inside the repos dir.
func (s *Service) ValidateName(name string) error {
	_, err := s.newRepoDir(name)
	return err
}

// newRepoDir validates name (Kod's rule) and returns the directory of the
// repository, checked to stay inside the repos dir.
func (s *Service) newRepoDir(name string) (string, error) {
	if err := forge.ValidateRepoName(name); err != nil {
		return "", err
	}
	dir, err := gitsvc.RepoPath(s.cfg.ReposDir, name)
	if err != nil {
		return "", forge.Invalid("Name must be alphanumeric with hyphens and underscores only")
	}
	return dir, nil
}

func newRepoRecord(name, dir string, owner *forge.Principal) *forge.Repo {
	return &forge.Repo{
		Name: name, CreatedAt: forge.NowMillis(), Path: dir, ProtectedBranches: []string{},
		OwnerTokenID: owner.TokenID, OwnerUsername: owner.Username,
	}
}

func (s *Service) initRepoDir(ctx context.Context, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return forge.Conflict("Repository already exists")
		}
		if mkErr := os.MkdirAll(filepath.Dir(dir), 0o755); mkErr != nil {
			return mkErr
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
	}
	// From here the directory is ours: remove it if anything fails.
	err := s.cfg.Git.InitBare(ctx, dir)
	if err == nil {
		err = gitsvc.InstallHooks(dir, s.cfg.HookBinary)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
	}
	return err
}
