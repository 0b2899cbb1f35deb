package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/kod-forge/kod/forge"
)

var (
	actRepoRead   = forge.Action{Perm: forge.PermRepoRead}
	actRepoWrite  = forge.Action{Perm: forge.PermRepoWrite}
	actRepoUpdate = forge.Action{Perm: forge.PermRepoWrite, OwnerVerb: "update this repository"}
	actRepoDelete = forge.Action{Perm: forge.PermRepoDelete, OwnerVerb: "delete this repository"}
)

func (s *Server) repoRoutes() {
	s.handle(http.MethodGet, "/repos", actRepoRead, s.listRepos)
	s.handle(http.MethodPost, "/repos", actRepoWrite, s.createRepo)
	s.handle(http.MethodPost, "/repos/import", actRepoWrite, s.importRepo)
	s.handle(http.MethodGet, "/repos/{name}", actRepoRead, s.getRepo)
	s.handle(http.MethodPatch, "/repos/{name}", actRepoUpdate, s.updateRepo)
	s.handle(http.MethodDelete, "/repos/{name}", actRepoDelete, s.deleteRepo)
}

// repoJSON is the Kod shape of a repository in lists and on creation,
// plus kod's stable id (unchanged by renames).
type repoJSON struct {
	ID                string   `json:"id"`
	Name              string   `json:"name"`
	CreatedAt         int64    `json:"createdAt"`
	Path              string   `json:"path"`
	OwnerTokenID      string   `json:"ownerTokenId"`
	ProtectedBranches []string `json:"protectedBranches"`
}

// repoDetailJSON is GET /repos/:name: the list shape plus collaborators,
// branches and the default branch (null when the repository is empty).
type repoDetailJSON struct {
	repoJSON
	Collaborators []string `json:"collaborators"`
	Branches      []string `json:"branches"`
	DefaultBranch *string  `json:"defaultBranch"`
	PublicBadges  bool     `json:"publicBadges"` // kod's addition: see PATCH /repos/:name
}

func (s *Server) toRepoJSON(r *forge.Repo) repoJSON {
	pb := slices.Clone(r.ProtectedBranches)
	if pb == nil {
		pb = []string{}
	}
	slices.Sort(pb)
	return repoJSON{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, Path: s.repoDir(r), OwnerTokenID: r.OwnerTokenID, ProtectedBranches: pb}
}

// repoDir is where r lives now (repos.Service.Dir).
func (s *Server) repoDir(r *forge.Repo) string { return s.Repos.Dir(r) }

// listRepos is Kod API GET /repos: the repositories the token can access.
func (s *Server) listRepos(w http.ResponseWriter, r *http.Request, c *call) error {
	repos, err := s.Store.ListRepos(r.Context())
	if err != nil {
		return err
	}
	out := []repoJSON{}
	for _, repo := range repos {
		if c.p.CanAccess(repo) {
			out = append(out, s.toRepoJSON(repo))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createRepo is Kod API POST /repos {name} -> 201 (repos.Service.Create).
func (s *Server) createRepo(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	repo, err := s.Repos.Create(r.Context(), req.Name, c.p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.toRepoJSON(repo))
	return nil
}

// getRepo is Kod API GET /repos/:name.
func (s *Server) getRepo(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	out, err := s.repoDetail(r.Context(), repo)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// repoDetail is the GET /repos/:name shape of repo.
func (s *Server) repoDetail(ctx context.Context, repo *forge.Repo) (*repoDetailJSON, error) {
	out := &repoDetailJSON{repoJSON: s.toRepoJSON(repo), Collaborators: []string{}, PublicBadges: repo.PublicBadges}
	for _, col := range repo.Collaborators {
		out.Collaborators = append(out.Collaborators, col.Username)
	}
	var err error
	out.Branches, err = s.Git.Branches(ctx, s.repoDir(repo))
	if err != nil {
		return nil, fmt.Errorf("listing branches of %s: %w", repo.Name, err)
	}
	if out.Branches == nil {
		out.Branches = []string{}
	}
	if head, err := s.Git.HeadBranch(ctx, s.repoDir(repo)); err == nil && slices.Contains(out.Branches, head) {
		out.DefaultBranch = &head
	} else if len(out.Branches) > 0 {
		out.DefaultBranch = &out.Branches[0]
	}
	return out, nil
}

// deleteRepo is Kod API DELETE /repos/:name -> 204: runs are cancelled,
// then the record with everything attached, then the directory and logs.
func (s *Server) deleteRepo(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	if err := s.Repos.Delete(context.WithoutCancel(r.Context()), repo); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// importRepo is Kod API POST /repos/import {source, name?} -> 201 with the
// new repository (repo:write); see repos.Service.Import for the rules and
// errors: 400 "Source is required" / "Could not derive repository name
// from source" / an invalid or refused source; 403 for a local path or
// file:// without an admin token; 409 when the name is taken; 500 "Failed
// to import repository: <git's error>".
func (s *Server) importRepo(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Source string `json:"source"`
		Name   string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	repo, err := s.Repos.Import(r.Context(), req.Source, req.Name, c.p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.toRepoJSON(repo))
	return nil
}
