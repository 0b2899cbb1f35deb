package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/kod-forge/kod/forge"
)

// renameRepo is Kod API PATCH /repos/:name {name} -> 200 with the renamed
// repository (repo:write, owner or admin). Renaming onto a taken name is
// 409 "A repository with that name already exists"; renaming to the same
// name changes nothing.
//
// The record and everything keyed by the repository name (collaborators
// and protections in the record; runs, secrets, webhooks and deliveries
// through the store's cascades) move in one transaction, and the bare
// repository directory moves with os.Rename inside the repos dir. Queued
// runs follow the new name; executing runs keep going (the runner resolves
// the name again before it reads the repository), and pushes in flight have
// their hooks pointed at the new name.
func (s *Server) renameRepo(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Name *string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Name == nil || *req.Name == "" {
		return forge.Invalid("Name is required")
	}
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	if _, err := s.newRepoDir(*req.Name); err != nil {
		return err
	}
	if *req.Name != repo.Name {
		repo, err = s.RenameRepo(context.WithoutCancel(r.Context()), repo.Name, *req.Name)
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, s.toRepoJSON(repo))
	return nil
}

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
