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

// Repo is a repository record. The bare repository lives at Path.
// Collaborators and protected branches are part of the record so a rename
// carries them along in one write.
type Repo struct {
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
}

// HasCollaborator reports whether username is a collaborator of r.
func (r *Repo) HasCollaborator(username string) bool {
	return slices.ContainsFunc(r.Collaborators, func(c Collaborator) bool { return c.Username == username })
}

// IsProtected reports whether branch (a short name like "main") is protected.
func (r *Repo) IsProtected(branch string) bool { return slices.Contains(r.ProtectedBranches, branch) }
