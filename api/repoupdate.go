package api

import (
	"context"
	"net/http"

	"github.com/kod-forge/kod/forge"
)

// updateRepo is Kod API PATCH /repos/:name {name?, defaultBranch?, publicBadges?} -> 200
// with the repository in the GET /repos/:name shape (repo:write, owner or
// admin; 403 "Only the repository owner can update this repository").
//
// name renames (Kod): onto a taken name is 409 "A repository with that
// name already exists", to the same name changes nothing; see
// repos.Service.Rename: the bare repository directory moves with os.Rename
// inside the repos dir, then one small transaction renames the record
// (runs, secrets, webhooks and deliveries refer to the repository's id and
// show the new name). Executing runs keep going and keep their branch's
// slot; pushes in flight find the repository by id.
//
// defaultBranch (kod's addition) points HEAD at an existing branch: what
// clones check out and where schedules run. 400 "Invalid branch name", 400
// "Branch '<b>' does not exist".
//
// publicBadges (kod's addition) lets callers without a token see the
// repository's badge (GET /repos/:name/badge.svg); false, the default,
// shows it only to tokens with workflow:read on the repository.
//
// A request with none of them is 400 "Name is required" (Kod's message);
// everything is checked before anything moves.
func (s *Server) updateRepo(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Name          *string `json:"name"`
		DefaultBranch *string `json:"defaultBranch"`
		PublicBadges  *bool   `json:"publicBadges"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if (req.Name == nil && req.DefaultBranch == nil && req.PublicBadges == nil) || (req.Name != nil && *req.Name == "") {
		return forge.Invalid("Name is required")
	}
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	if req.Name != nil {
		if err := s.Repos.ValidateName(*req.Name); err != nil {
			return err
		}
	}
	if req.DefaultBranch != nil {
		if err := s.Repos.CheckBranch(r.Context(), repo, *req.DefaultBranch); err != nil {
			return err
		}
	}
	ctx := context.WithoutCancel(r.Context())
	if req.Name != nil && *req.Name != repo.Name {
		if repo, err = s.Repos.Rename(ctx, repo.Name, *req.Name); err != nil {
			return err
		}
	}
	if req.DefaultBranch != nil {
		if err := s.Repos.SetDefaultBranch(ctx, repo, *req.DefaultBranch, c.p); err != nil {
			return err
		}
	}
	if req.PublicBadges != nil && *req.PublicBadges != repo.PublicBadges {
		if repo, err = s.Store.UpdateRepo(ctx, repo.Name, func(x *forge.Repo) error {
			x.PublicBadges = *req.PublicBadges
			return nil
		}); err != nil {
			return err
		}
		s.log.Info("badge visibility set", "repo", repo.Name, "public", repo.PublicBadges, "token", c.p.TokenID)
	}
	out, err := s.repoDetail(ctx, repo)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
