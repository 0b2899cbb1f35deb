package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
)

// actAdmin guards the token routes (Kod: 403 "Admin permission required").
var actAdmin = forge.Action{Perm: forge.PermAdmin, Denied: "Admin permission required"}

func (s *Server) tokenRoutes() {
	s.handle(http.MethodGet, "/tokens", actAdmin, s.listTokens)
	s.handle(http.MethodPost, "/tokens", actAdmin, s.createToken)
	s.handle(http.MethodDelete, "/tokens/{id}", actAdmin, s.deleteToken)
}

// tokenJSON is a token as listed: never its hash or secret.
type tokenJSON struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	CreatedAt   int64              `json:"createdAt"`
	LastUsedAt  *int64             `json:"lastUsedAt,omitempty"`
	ExpiresAt   *int64             `json:"expiresAt,omitempty"`
	Permissions []forge.Permission `json:"permissions"`
	Username    *string            `json:"username,omitempty"`
}

func toTokenJSON(t *forge.Token) tokenJSON {
	out := tokenJSON{ID: t.ID, Name: t.Name, CreatedAt: t.CreatedAt, Permissions: t.Permissions}
	if t.LastUsedAt != 0 {
		out.LastUsedAt = &t.LastUsedAt
	}
	if t.ExpiresAt != 0 {
		out.ExpiresAt = &t.ExpiresAt
	}
	if t.Username != "" {
		out.Username = &t.Username
	}
	return out
}

// listTokens is Kod API GET /tokens (admin): every token, without secrets.
// Expired tokens are removed on the way.
func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, c *call) error {
	tokens, err := s.Store.ListTokens(r.Context())
	if err != nil {
		return err
	}
	now := s.now().UnixMilli()
	out := []tokenJSON{}
	for _, t := range tokens {
		if t.Expired(now) {
			if err := s.Store.DeleteToken(r.Context(), t.ID); err != nil && !errors.Is(err, forge.ErrNotFound) {
				return err
			}
			continue
		}
		out = append(out, toTokenJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createToken is Kod API POST /tokens {name, permissions?, expiresInDays?,
// username?} -> 201 with the token shown once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Name          string             `json:"name"`
		Permissions   []forge.Permission `json:"permissions"`
		ExpiresInDays *int               `json:"expiresInDays"`
		Username      string             `json:"username"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		return forge.Invalid("Token name is required")
	}
	if len(req.Name) > 100 {
		return forge.Invalid("Token name must be at most 100 characters")
	}
	if forge.HasControl(req.Name) {
		return forge.Invalid("Token name must not contain control characters (such as NUL, tab, newline or ESC)")
	}
	perms := req.Permissions
	if perms == nil {
		perms = slices.Clone(forge.DefaultPermissions)
	}
	for _, p := range perms {
		if !forge.ValidPermission(p) {
			return forge.Invalid("Invalid permission: %s", p)
		}
	}
	perms = dedupe(perms)
	now := s.now()
	tok := &forge.Token{ID: forge.NewID(), Name: req.Name, CreatedAt: now.UnixMilli(), Permissions: perms, Username: req.Username}
	if req.ExpiresInDays != nil {
		d := *req.ExpiresInDays
		if d < 1 || d > 365 {
			return forge.Invalid("expiresInDays must be between 1 and 365")
		}
		tok.ExpiresAt = now.UnixMilli() + int64(d)*24*3600*1000
	}
	if err := s.checkTokenUsername(r, req.Username); err != nil {
		return err
	}
	secret := forge.NewTokenSecret()
	tok.Hash = forge.HashToken(secret)
	if err := s.Store.CreateToken(r.Context(), tok); err != nil {
		return err
	}
	out := map[string]any{
		"id": tok.ID, "name": tok.Name, "token": secret, "permissions": tok.Permissions,
		"expiresAt": nil, "username": nil, "message": "Save this token - it will not be shown again",
	}
	if tok.ExpiresAt != 0 {
		out["expiresAt"] = tok.ExpiresAt
	}
	if tok.Username != "" {
		out["username"] = tok.Username
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// dedupe drops repeated permissions, keeping the first of each in order.
func dedupe(perms []forge.Permission) []forge.Permission {
	out := make([]forge.Permission, 0, len(perms))
	for _, p := range perms {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// checkTokenUsername accepts "" (a system token) or a username that is a
// collaborator of some repository; anything else is 400 "Collaborator 'X'
// not found" (Kod: a token's username must be a known collaborator).
func (s *Server) checkTokenUsername(r *http.Request, username string) error {
	if username == "" {
		return nil
	}
	unknown := forge.Invalid("Collaborator '%s' not found", username)
	if forge.ValidateUsername(username) != nil {
		return unknown
	}
	repos, err := s.Store.ListRepos(r.Context())
	if err != nil {
		return err
	}
	for _, repo := range repos {
		if repo.HasCollaborator(username) {
			return nil
		}
	}
	return unknown
}

// deleteToken is Kod API DELETE /tokens/:id -> 204; 400 for your own token.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, c *call) error {
	id := mux.Vars(r)["id"]
	if id == c.p.TokenID {
		return forge.Invalid("Cannot delete your own token")
	}
	if err := s.Store.DeleteToken(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
