package api

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/kod-forge/kod/forge"
)

// RenameRepo moves repository oldName to newName: the directory first, then
// the record with everything attached; if the record cannot move, the
// directory moves back. Errors: ErrInvalid (newName), ErrNotFound,
// ErrConflict when newName is taken in the store or on disk.
func (s *Server) RenameRepo(ctx context.Context, oldName, newName string) (*forge.Repo, error) {
	newDir, err := s.newRepoDir(newName)
	if err != nil {
		return nil, err
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	repo, err := s.Store.GetRepo(ctx, oldName)
	if err != nil {
		return nil, err
	}
	taken := forge.Conflict("A repository with that name already exists")
	if _, err := s.Store.GetRepo(ctx, newName); err == nil {
		return nil, taken
	} else if !errors.Is(err, forge.ErrNotFound) {
		return nil, err
	}
	// An unrelated directory (left over, or made by hand) also blocks the
	// name: os.Rename would replace it if it were empty.
	if _, err := os.Lstat(newDir); err == nil {
		return nil, taken
	}
	oldDir := s.repoDir(repo)
	if err := os.Rename(oldDir, newDir); err != nil {
		return nil, fmt.Errorf("moving %s to %s: %w", oldName, newName, err)
	}
	renamed, err := s.Store.RenameRepo(ctx, oldName, newName)
	if err != nil {
		if backErr := os.Rename(newDir, oldDir); backErr != nil {
			err = errors.Join(err, fmt.Errorf("moving the directory back: %w", backErr))
		}
		return nil, err
	}
	s.Hooks.RepoRenamed(oldName, newName)
	s.log.Info("repository renamed", "from", oldName, "to", newName)
	return renamed, nil
}
