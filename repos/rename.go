package repos

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/kod-forge/kod/forge"
)

// Rename moves repository oldName to newName: the directory first, then
// the record with everything attached (store.RenameRepo, one transaction);
// if the record cannot move, the directory moves back. Pushes in flight
// follow the new name; queued runs move with the record, and executing
// runs read the name again before they touch the repository. Errors:
// ErrInvalid (newName), ErrNotFound, ErrConflict when newName is taken in
// the store or on disk.
func (s *Service) Rename(ctx context.Context, oldName, newName string) (*forge.Repo, error) {
	newDir, err := s.newRepoDir(newName)
	if err != nil {
		return nil, err
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	repo, err := s.cfg.Store.GetRepo(ctx, oldName)
	if err != nil {
		return nil, err
	}
	taken := forge.Conflict("A repository with that name already exists")
	if _, err := s.cfg.Store.GetRepo(ctx, newName); err == nil {
		return nil, taken
	} else if !errors.Is(err, forge.ErrNotFound) {
		return nil, err
	}
	// An unrelated directory (left over, or made by hand) also blocks the
	// name: os.Rename would replace it if it were empty.
	if _, err := os.Lstat(newDir); err == nil {
		return nil, taken
	}
	oldDir := s.Dir(repo)
	if err := os.Rename(oldDir, newDir); err != nil {
		return nil, fmt.Errorf("moving %s to %s: %w", oldName, newName, err)
	}
	renamed, err := s.cfg.Store.RenameRepo(ctx, oldName, newName)
	if err != nil {
		if backErr := os.Rename(newDir, oldDir); backErr != nil {
			err = errors.Join(err, fmt.Errorf("moving the directory back: %w", backErr))
		}
		return nil, err
	}
	s.log.Info("repository renamed", "from", oldName, "to", newName)
	return renamed, nil
}
