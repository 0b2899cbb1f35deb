package forge

import (
	"regexp"
	"slices"
	"strings"
)

// MaxRepoNameLen caps repository names (deliberate addition to Kod's rule).
const MaxRepoNameLen = 100

var repoNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// ValidateRepoName applies Kod's rule `^[a-zA-Z0-9_-]+$` plus at most 100
// characters and no leading '-'. Errors are ErrInvalid with Kod's messages:
// "Name is required" / "Name must be alphanumeric with hyphens and
// underscores only".
func ValidateRepoName(name string) error {
	switch {
	case name == "":
		return Invalid("Name is required")
	case !repoNameRE.MatchString(name) || strings.HasPrefix(name, "-"):
		return Invalid("Name must be alphanumeric with hyphens and underscores only")
	case len(name) > MaxRepoNameLen:
		return Invalid("Name must be at most %d characters", MaxRepoNameLen)
	}
	return nil
}

// Collaborator links a username to a repository (Kod API:
// GET /repos/:name/collaborators). AddedAt is ms since the epoch.
type Collaborator struct {
	Username string `json:"username"`
	AddedAt  Millis `json:"addedAt"`
}

// Repo is a repository record. ID is immutable, given at creation; every
// record attached to the repository (runs, secrets, webhooks, deliveries)
// refers to it, and Name is a unique, renamable attribute. The bare
// repository lives at <repos dir>/<Name>.git (Path records where it was
// last). Collaborators and protected branches are part of the record.
type Repo struct {
	ID                string         `json:"id"`
	Name              string         `json:"name"`
	CreatedAt         Millis         `json:"createdAt"`
	Path              string         `json:"path"`
	OwnerTokenID      string         `json:"ownerTokenId"`
	ProtectedBranches []string       `json:"protectedBranches"`
	Collaborators     []Collaborator `json:"collaborators,omitempty"`
	// OwnerUsername is the username of the creating token ("" for system
	// and unlinked admin tokens). Not part of the Kod API; it lets
	// transports without a token (SSH) decide ownership (Principal.IsOwner).
	OwnerUsername string `json:"ownerUsername,omitempty"`
	// PublicBadges lets anyone see the repository's badge (GET
	// /repos/:name/badge.svg); records written before it existed read as
	// false, which keeps their badges private.
	PublicBadges bool `json:"publicBadges,omitempty"`
}

// HasCollaborator reports whether username is a collaborator of r.
func (r *Repo) HasCollaborator(username string) bool {
	return slices.ContainsFunc(r.Collaborators, func(c Collaborator) bool { return c.Username == username })
}

// AddCollaborator adds username at time at (ms). ErrConflict
// "Collaborator already added to this repository" when present (Kod API:
// POST /repos/:name/collaborators).
func (r *Repo) AddCollaborator(username string, at Millis) error {
	if r.HasCollaborator(username) {
		return Conflict("Collaborator already added to this repository")
	}
	r.Collaborators = append(r.Collaborators, Collaborator{Username: username, AddedAt: at})
	return nil
}

// RemoveCollaborator removes username. ErrNotFound "Collaborator not found"
// when absent (Kod API: DELETE /repos/:name/collaborators/:username).
func (r *Repo) RemoveCollaborator(username string) error {
	i := slices.IndexFunc(r.Collaborators, func(c Collaborator) bool { return c.Username == username })
	if i < 0 {
		return NotFound("Collaborator not found")
	}
	r.Collaborators = slices.Delete(r.Collaborators, i, i+1)
	return nil
}

// IsProtected reports whether branch (a short name like "main") is protected.
func (r *Repo) IsProtected(branch string) bool { return slices.Contains(r.ProtectedBranches, branch) }

// Protect adds branch to the protected branches (idempotent) and keeps
// them sorted. The caller validates the name (ValidBranchName).
func (r *Repo) Protect(branch string) {
	if !r.IsProtected(branch) {
		r.ProtectedBranches = append(r.ProtectedBranches, branch)
	}
	slices.Sort(r.ProtectedBranches)
}

// Unprotect removes branch from the protected branches (idempotent).
func (r *Repo) Unprotect(branch string) {
	r.ProtectedBranches = slices.DeleteFunc(r.ProtectedBranches, func(b string) bool { return b == branch })
	if r.ProtectedBranches == nil {
		r.ProtectedBranches = []string{}
	}
}

// MaxUsernameLen caps usernames of collaborators and tokens.
const MaxUsernameLen = 64

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// reservedUsernames name the anonymous SSH user; nobody may hold them.
var reservedUsernames = []string{"anonymous", "anon"}

// ValidateUsername checks a collaborator or token username: 1-64
// characters of letters, digits, '.', '_' and '-', starting with a letter
// or digit, and not a reserved name ("anonymous", "anon": the SSH
// anonymous user). ErrInvalid "Username is required" / "Invalid username:
// ...". Kod's rule is not documented; this one keeps usernames safe in
// paths, logs and SSH (deliberate).
func ValidateUsername(username string) error {
	switch {
	case username == "":
		return Invalid("Username is required")
	case len(username) > MaxUsernameLen || !usernameRE.MatchString(username):
		return Invalid("Invalid username: use 1-%d letters, digits, '.', '_' or '-', starting with a letter or digit", MaxUsernameLen)
	case slices.Contains(reservedUsernames, strings.ToLower(username)):
		return Invalid("Invalid username: '%s' is reserved", username)
	}
	return nil
}
