package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
)

// actKeys guards the SSH key routes. Kod names no permission for them;
// kod asks for repo:read (admin implies it), since a key is a way to read
// and write repositories: a token that cannot read any (a workflow-only
// token, a token holding nothing) can neither list, add nor remove keys.
// Which keys a token may manage is then decided per route: its own
// username's, admins anyone's. What a key grants is forge.KeyPrincipal's
// rule: a key added by a non-admin token never grants more than that
// token holds, and nothing once it is deleted or has expired.
var actKeys = forge.Action{Perm: forge.PermRepoRead, Denied: "Permission denied: managing SSH keys requires a token with repo:read"}

func (s *Server) keyRoutes() {
	s.handle(http.MethodGet, "/keys", actKeys, s.listKeys)
	s.handle(http.MethodPost, "/keys", actKeys, s.addKey)
	s.handle(http.MethodDelete, "/keys/{id}", actKeys, s.deleteKey)
}

// errNoUsername answers a token without a username that names no user:
// keys belong to usernames, and a system token has none.
var errNoUsername = forge.Invalid("This token has no username: SSH keys belong to a username. Use a token created with a username, or an admin token with \"username\"")

// listKeys is Kod API GET /keys: the keys of the token's username. Admins
// may pass ?username=NAME for that user's keys, and an admin token without
// a username of its own lists every key. Others asking for another
// username get 403.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request, c *call) error {
	user := strings.TrimSpace(r.URL.Query().Get("username"))
	switch {
	case user != "" && user != c.p.Username && !c.p.IsAdmin():
		return forge.Forbidden("Admin permission required")
	case user == "" && c.p.Username != "":
		user = c.p.Username
	case user == "" && !c.p.IsAdmin():
		return errNoUsername
	}
	keys, err := s.Store.ListKeys(r.Context(), user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keys)
	return nil
}

// addKey is Kod API POST /keys {publicKey, name?, username?} -> 201 with
// the key. The key belongs to the token's username; admins may name
// another (known) user, and an admin token without a username must. The
// key records the adding token (addedByTokenId, addedByAdmin), which
// decides what it grants (forge.KeyPrincipal). 400: invalid or unsupported
// key, no username; 403: no repo:read, another user's key without admin;
// 409 "SSH key already exists" (for any user).
func (s *Server) addKey(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		PublicKey string `json:"publicKey"`
		Name      string `json:"name"`
		Username  string `json:"username"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	user := strings.TrimSpace(req.Username)
	switch {
	case user == "" && c.p.Username == "":
		return errNoUsername
	case user == "":
		user = c.p.Username
	case user != c.p.Username && !c.p.IsAdmin():
		return forge.Forbidden("Admin permission required to add a key for another user")
	case user != c.p.Username:
		known, err := s.knownUser(r, user)
		if err != nil {
			return err
		}
		if !known {
			return forge.Invalid("User '%s' not found: not a collaborator of any repository nor the username of a token", user)
		}
	}
	key, err := forge.NewSSHKey(user, req.PublicKey, req.Name, c.p)
	if err != nil {
		return err
	}
	if err := s.Store.CreateKey(r.Context(), key); err != nil {
		return err
	}
	s.log.Info("SSH key added", "user", user, "fingerprint", key.Fingerprint, "by_token", c.p.TokenID, "by_admin", key.AddedByAdmin)
	writeJSON(w, http.StatusCreated, key)
	return nil
}

// knownUser reports whether username is a valid username that is a
// collaborator of some repository or the username of some token.
func (s *Server) knownUser(r *http.Request, username string) (bool, error) {
	if forge.ValidateUsername(username) != nil {
		return false, nil
	}
	if err := s.checkTokenUsername(r, username); err == nil {
		return true, nil
	} else if !errors.Is(err, forge.ErrInvalid) {
		return false, err
	}
	tokens, err := s.Store.ListTokens(r.Context())
	if err != nil {
		return false, err
	}
	for _, t := range tokens {
		if t.Username == username {
			return true, nil
		}
	}
	return false, nil
}

// deleteKey is Kod API DELETE /keys/:id -> 204. Users remove their own
// keys, admins any key; another user's key is 404 "SSH key not found" so
// key ids do not leak. The key stops working at once: SSH resolves the
// signing key in the store for every session.
func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request, c *call) error {
	key, err := s.Store.GetKey(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	if !c.p.IsAdmin() && (c.p.Username == "" || key.Username != c.p.Username) {
		return forge.NotFound("SSH key not found")
	}
	if err := s.Store.DeleteKey(r.Context(), key.ID); err != nil {
		return err
	}
	s.log.Info("SSH key removed", "user", key.Username, "fingerprint", key.Fingerprint, "by_token", c.p.TokenID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
