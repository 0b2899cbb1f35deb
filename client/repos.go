package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
)

// Repo is a repository as listed and created (Kod API: GET /repos, POST
// /repos). CreatedAt is ms since the epoch.
type Repo struct {
	ID                string   `json:"id"` // stable across renames
	Name              string   `json:"name"`
	CreatedAt         int64    `json:"createdAt"`
	Path              string   `json:"path"`
	OwnerTokenID      string   `json:"ownerTokenId"`
	ProtectedBranches []string `json:"protectedBranches"`
}

// RepoDetail is GET /repos/:name: the list shape plus collaborators,
// branches and the default branch (nil for an empty repository).
type RepoDetail struct {
	Repo
	Collaborators Collaborators `json:"collaborators"`
	Branches      []string      `json:"branches"`
	DefaultBranch *string       `json:"defaultBranch"`
}

// Collaborator is one collaborator of a repository; AddedAt (ms) is 0 when
// the server lists bare usernames.
type Collaborator struct {
	Username string `json:"username"`
	AddedAt  int64  `json:"addedAt,omitempty"`
}

// Collaborators decodes both shapes servers use for a collaborator list:
// ["alice"] (Kod's API page) and [{"username":"alice","addedAt":...}].
type Collaborators []Collaborator

// UnmarshalJSON implements json.Unmarshaler.
func (cs *Collaborators) UnmarshalJSON(data []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	out := make(Collaborators, 0, len(raw))
	for _, r := range raw {
		var name string
		if json.Unmarshal(r, &name) == nil {
			out = append(out, Collaborator{Username: name})
			continue
		}
		var c Collaborator
		if err := json.Unmarshal(r, &c); err != nil {
			return fmt.Errorf("collaborator %s: %w", r, err)
		}
		out = append(out, c)
	}
	*cs = out
	return nil
}

// Usernames returns the collaborators' usernames in order.
func (cs Collaborators) Usernames() []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Username
	}
	return out
}

// ListRepos is GET /repos: the repositories the token can read.
func (c *Client) ListRepos(ctx context.Context) ([]Repo, error) {
	out := []Repo{}
	return out, c.do(ctx, http.MethodGet, "/repos", nil, &out)
}

// CreateRepo is POST /repos {name} -> 201.
func (c *Client) CreateRepo(ctx context.Context, name string) (*Repo, error) {
	var out Repo
	return &out, c.do(ctx, http.MethodPost, "/repos", map[string]string{"name": name}, &out)
}

// ImportRepo is POST /repos/import {source, name?} -> 201: a mirror clone of
// source; name "" lets the server derive it from source.
func (c *Client) ImportRepo(ctx context.Context, source, name string) (*Repo, error) {
	body := map[string]string{"source": source}
	if name != "" {
		body["name"] = name
	}
	var out Repo
	return &out, c.do(ctx, http.MethodPost, "/repos/import", body, &out)
}

// GetRepo is GET /repos/:name.
func (c *Client) GetRepo(ctx context.Context, name string) (*RepoDetail, error) {
	var out RepoDetail
	return &out, c.do(ctx, http.MethodGet, "/repos/"+esc(name), nil, &out)
}

// RenameRepo is PATCH /repos/:name {name: newName} -> 200.
func (c *Client) RenameRepo(ctx context.Context, name, newName string) (*Repo, error) {
	var out Repo
	return &out, c.do(ctx, http.MethodPatch, "/repos/"+esc(name), map[string]string{"name": newName}, &out)
}

// SetDefaultBranch is PATCH /repos/:name {defaultBranch} -> 200 (kod's
// addition): HEAD points at branch, which must exist.
func (c *Client) SetDefaultBranch(ctx context.Context, name, branch string) (*RepoDetail, error) {
	var out RepoDetail
	return &out, c.do(ctx, http.MethodPatch, "/repos/"+esc(name), map[string]string{"defaultBranch": branch}, &out)
}

// DeleteRepo is DELETE /repos/:name -> 204.
func (c *Client) DeleteRepo(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, "/repos/"+esc(name), nil, nil)
}

// branchesJSON is {branches: [...]} of the protection routes.
type branchesJSON struct {
	Branches []string `json:"branches"`
}

// ProtectedBranches is GET /repos/:name/protections: the protected
// branches, sorted.
func (c *Client) ProtectedBranches(ctx context.Context, repo string) ([]string, error) {
	var out branchesJSON
	err := c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/protections", nil, &out)
	return sorted(out.Branches), err
}

// Protect is PUT /repos/:name/protections/branches/:branch; it returns the
// protected branches after the change.
func (c *Client) Protect(ctx context.Context, repo, branch string) ([]string, error) {
	var out branchesJSON
	err := c.do(ctx, http.MethodPut, "/repos/"+esc(repo)+"/protections/branches/"+esc(branch), nil, &out)
	return sorted(out.Branches), err
}

// Unprotect is DELETE /repos/:name/protections/branches/:branch; it returns
// the protected branches after the change.
func (c *Client) Unprotect(ctx context.Context, repo, branch string) ([]string, error) {
	var out branchesJSON
	err := c.do(ctx, http.MethodDelete, "/repos/"+esc(repo)+"/protections/branches/"+esc(branch), nil, &out)
	return sorted(out.Branches), err
}

func sorted(s []string) []string {
	if s == nil {
		return []string{}
	}
	slices.Sort(s)
	return s
}

// collaboratorsJSON is GET /repos/:name/collaborators: Kod's page shows
// {repoName, collaborators}; kod adds details [{username, addedAt}]. A bare
// array is accepted too.
type collaboratorsJSON struct {
	RepoName      string        `json:"repoName"`
	Collaborators Collaborators `json:"collaborators"`
	Details       Collaborators `json:"details"`
}

// ListCollaborators is GET /repos/:name/collaborators, in the server's
// order, with AddedAt when the server gives it.
func (c *Client) ListCollaborators(ctx context.Context, repo string) (Collaborators, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/collaborators", nil, &raw); err != nil {
		return nil, err
	}
	var out Collaborators
	if len(raw) > 0 && raw[0] == '[' {
		err := json.Unmarshal(raw, &out)
		return out, err
	}
	var obj collaboratorsJSON
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("decoding collaborators: %w", err)
	}
	if len(obj.Details) == len(obj.Collaborators) && len(obj.Details) > 0 {
		return obj.Details, nil // same people, with when they were added
	}
	if obj.Collaborators == nil {
		obj.Collaborators = Collaborators{}
	}
	return obj.Collaborators, nil
}

// AddCollaborator is POST /repos/:name/collaborators {username} -> 201.
func (c *Client) AddCollaborator(ctx context.Context, repo, username string) error {
	return c.do(ctx, http.MethodPost, "/repos/"+esc(repo)+"/collaborators", map[string]string{"username": username}, nil)
}

// RemoveCollaborator is DELETE /repos/:name/collaborators/:username -> 204.
func (c *Client) RemoveCollaborator(ctx context.Context, repo, username string) error {
	return c.do(ctx, http.MethodDelete, "/repos/"+esc(repo)+"/collaborators/"+esc(username), nil, nil)
}
