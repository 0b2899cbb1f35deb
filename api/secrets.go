package api

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
)

var (
	actSecretsRead  = forge.Action{Perm: forge.PermSecretsRead}
	actSecretsWrite = forge.Action{Perm: forge.PermSecretsWrite}
)

// Kod's 500 answers of PUT /repos/:name/secrets/:secretName when secrets
// cannot be sealed.
const (
	msgNoEncryptionKey = "No encryption key configured. Set KOD_ENCRYPTION_KEY or use --encryption-key."
	msgKeyMismatch     = "The configured encryption key is not the key the stored secrets were saved with. Restart the server with KOD_ENCRYPTION_KEY set to that key."
)

func (s *Server) secretRoutes() {
	s.handle(http.MethodGet, "/repos/{name}/secrets", actSecretsRead, s.listSecrets)
	s.handle(http.MethodPut, "/repos/{name}/secrets/{secretName}", actSecretsWrite, s.putSecret)
	s.handle(http.MethodDelete, "/repos/{name}/secrets/{secretName}", actSecretsWrite, s.deleteSecret)
}

// secretJSON is a secret as listed: never its value.
type secretJSON struct {
	Name      string       `json:"name"`
	RepoName  string       `json:"repoName"`
	CreatedAt forge.Millis `json:"createdAt"`
	UpdatedAt forge.Millis `json:"updatedAt"`
}

// listSecrets is Kod API GET /repos/:name/secrets -> 200 [{name, repoName,
// createdAt, updatedAt}] sorted by name; values are never returned.
func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	secrets, err := s.Store.ListSecrets(r.Context(), repo.Name)
	if err != nil {
		return err
	}
	out := make([]secretJSON, 0, len(secrets))
	for _, sec := range secrets {
		out = append(out, secretJSON{Name: sec.Name, RepoName: sec.RepoName, CreatedAt: sec.CreatedAt, UpdatedAt: sec.UpdatedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putSecret is Kod API PUT /repos/:name/secrets/:secretName {value} -> 200
// {name, repoName, message: "Secret saved"}, creating or replacing the
// secret (createdAt kept). After the repository checks of every {name}
// route (Kod made the key check first): 500 without an encryption key, 400
// "Secret value is required", 400 for the name; values are at most 64 KiB.
func (s *Server) putSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	if s.Secrets == nil {
		writeJSON(w, http.StatusInternalServerError, errorBody{msgNoEncryptionKey})
		return nil
	}
	var req struct {
		Value string `json:"value"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	name := mux.Vars(r)["secretName"]
	if err := forge.ValidateSecretValue(req.Value); err != nil {
		return err
	}
	if err := forge.ValidateSecretName(name); err != nil {
		return err
	}
	sealed, err := s.Secrets.Seal(repo.ID, name, []byte(req.Value))
	if errors.Is(err, forge.ErrSecretKey) {
		writeJSON(w, http.StatusInternalServerError, errorBody{msgKeyMismatch})
		return nil
	}
	if err != nil {
		return err
	}
	now := forge.NowMillis()
	created, err := s.Store.PutSecret(r.Context(), &forge.Secret{Name: name, RepoID: repo.ID, RepoName: repo.Name, CreatedAt: now, UpdatedAt: now, Sealed: sealed})
	if err != nil {
		return err
	}
	s.log.Info("secret saved", "repo", repo.Name, "secret", name, "created", created, "token", c.p.TokenID)
	writeJSON(w, http.StatusOK, map[string]string{"name": name, "repoName": repo.Name, "message": "Secret saved"})
	return nil
}

// deleteSecret is Kod API DELETE /repos/:name/secrets/:secretName -> 204,
// also when there was no such secret (Kod: idempotent).
func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	name := mux.Vars(r)["secretName"]
	err = s.Store.DeleteSecret(r.Context(), repo.Name, name)
	switch {
	case err == nil:
		s.log.Info("secret deleted", "repo", repo.Name, "secret", name, "token", c.p.TokenID)
	case !errors.Is(err, forge.ErrNotFound):
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
