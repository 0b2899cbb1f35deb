package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
)

var (
	actCollabRead  = forge.Action{Perm: forge.PermCollaboratorRead}
	actCollabWrite = forge.Action{Perm: forge.PermCollaboratorWrite, OwnerVerb: "manage collaborators"}
)

func (s *Server) collaboratorRoutes() {
	s.handle(http.MethodGet, "/repos/{name}/collaborators", actCollabRead, s.listCollaborators)
	s.handle(http.MethodPost, "/repos/{name}/collaborators", actCollabWrite, s.addCollaborator)
	s.handle(http.MethodDelete, "/repos/{name}/collaborators/{username}", actCollabWrite, s.removeCollaborator)
}

// collaboratorsJSON is Kod's list shape {repoName, collaborators: [names]}
// (the seed API page), plus details [{username, addedAt}] (ms) for clients
// that want when each was added; the extra field breaks no script.
type collaboratorsJSON struct {
	RepoName      string               `json:"repoName"`
	Collaborators []string             `json:"collaborators"`
	Details       []forge.Collaborator `json:"details"`
}

func toCollaboratorsJSON(r *forge.Repo) collaboratorsJSON {
	out := collaboratorsJSON{RepoName: r.Name, Collaborators: []string{}, Details: []forge.Collaborator{}}
	for _, c := range r.Collaborators {
		out.Collaborators = append(out.Collaborators, c.Username)
		out.Details = append(out.Details, c)
	}
	return out
}

// listCollaborators is Kod API GET /repos/:name/collaborators
// (collaborator:read and access to the repository).
func (s *Server) listCollaborators(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toCollaboratorsJSON(repo))
	return nil
}

// addCollaborator is Kod API POST /repos/:name/collaborators {username} ->
// 201 with the list (collaborator:write, owner or admin). 400 "Username is
// required" / invalid username; 409 "Collaborator already added to this
// repository".
func (s *Server) addCollaborator(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Username string `json:"username"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if err := forge.ValidateUsername(req.Username); err != nil {
		return err
	}
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	repo, err = s.Store.UpdateRepo(r.Context(), repo.Name, func(x *forge.Repo) error {
		return x.AddCollaborator(req.Username, s.now().UnixMilli())
	})
	if err != nil {
		return err
	}
	s.log.Info("collaborator added", "repo", repo.Name, "username", req.Username)
	writeJSON(w, http.StatusCreated, toCollaboratorsJSON(repo))
	return nil
}

// removeCollaborator is Kod API DELETE /repos/:name/collaborators/:username
// -> 204 (collaborator:write, owner or admin); 404 "Collaborator not found".
// The user's username-linked tokens lose access to the repository at once.
func (s *Server) removeCollaborator(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	username := mux.Vars(r)["username"]
	if _, err := s.Store.UpdateRepo(r.Context(), repo.Name, func(x *forge.Repo) error {
		return x.RemoveCollaborator(username)
	}); err != nil {
		return err
	}
	s.log.Info("collaborator removed", "repo", repo.Name, "username", username)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
