package api

import (
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
)

var actProtect = forge.Action{Perm: forge.PermRepoWrite, OwnerVerb: "change branch protections"}

// Branch names contain '/', so the last variable takes the rest of the path.
const protectionPath = "/repos/{name}/protections/branches/{branch:.+}"

func (s *Server) protectionRoutes() {
	// The seed page does not show the list's path; both readings work.
	s.handle(http.MethodGet, "/repos/{name}/protections", actRepoRead, s.listProtections)
	s.handle(http.MethodGet, "/repos/{name}/protections/branches", actRepoRead, s.listProtections)
	s.handle(http.MethodPut, protectionPath, actProtect, s.protectBranch)
	s.handle(http.MethodDelete, protectionPath, actProtect, s.unprotectBranch)
}

// branchesJSON is Kod's {branches: [sorted names]}.
type branchesJSON struct {
	Branches []string `json:"branches"`
}

func toBranchesJSON(r *forge.Repo) branchesJSON {
	b := slices.Clone(r.ProtectedBranches)
	if b == nil {
		b = []string{}
	}
	slices.Sort(b)
	return branchesJSON{Branches: b}
}

// listProtections is Kod API GET /repos/:name/protections -> 200
// {branches} (repo:read).
func (s *Server) listProtections(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toBranchesJSON(repo))
	return nil
}

// protectBranch is Kod API PUT /repos/:name/protections/branches/:branch ->
// 200 {branches} (repo:write, owner or admin; idempotent). 400 "Invalid
// branch name" (git's check-ref-format rules, 1-255 bytes, no leading '-').
// The branch need not exist yet: protecting it first guards its creation.
func (s *Server) protectBranch(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.changeProtection(w, r, c, (*forge.Repo).Protect)
}

// unprotectBranch is Kod API DELETE /repos/:name/protections/branches/:branch
// -> 200 {branches} (repo:write, owner or admin; idempotent).
func (s *Server) unprotectBranch(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.changeProtection(w, r, c, (*forge.Repo).Unprotect)
}

func (s *Server) changeProtection(w http.ResponseWriter, r *http.Request, c *call, change func(*forge.Repo, string)) error {
	branch := mux.Vars(r)["branch"]
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	if !forge.ValidBranchName(branch) {
		return forge.Invalid("Invalid branch name")
	}
	repo, err = s.Store.UpdateRepo(r.Context(), repo.Name, func(x *forge.Repo) error {
		change(x, branch)
		return nil
	})
	if err != nil {
		return err
	}
	s.log.Info("branch protections changed", "repo", repo.Name, "branch", branch, "method", r.Method)
	writeJSON(w, http.StatusOK, toBranchesJSON(repo))
	return nil
}
