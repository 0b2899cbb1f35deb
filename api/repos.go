package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
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

// repoJSON is the Kod shape of a repository in lists and on creation.
type repoJSON struct {
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
	return repoJSON{Name: r.Name, CreatedAt: r.CreatedAt, Path: s.repoDir(r), OwnerTokenID: r.OwnerTokenID, ProtectedBranches: pb}
}

// repoDir is where r lives now: always derived from the configured repos
// dir (the stored path is informational, so a moved or restored repos dir
// keeps working).
func (s *Server) repoDir(r *forge.Repo) string {
	dir, err := gitsvc.RepoPath(s.ReposDir, r.Name)
	if err != nil {
		return r.Path // unreachable for stored (validated) names
	}
	return dir
}

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

// createRepo is Kod API POST /repos {name} -> 201. The record is stored
// first (so two creations of one name cannot both win), then the bare
// repository and its hooks; a failure undoes the record and never touches
// a directory that existed before.
func (s *Server) createRepo(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	repo, err := s.CreateRepo(r.Context(), req.Name, c.p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, s.toRepoJSON(repo))
	return nil
}

// CreateRepo validates name, stores the record owned by owner (its token,
// and its username for transports without tokens) and creates the bare
// repository with kod's hooks. Errors: ErrInvalid (name), ErrConflict
// ("Repository already exists", also when an unrelated directory of that
// name exists on disk).
func (s *Server) CreateRepo(ctx context.Context, name string, owner *forge.Principal) (*forge.Repo, error) {
	dir, err := s.newRepoDir(name)
	if err != nil {
		return nil, err
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	if _, err := os.Lstat(dir); err == nil {
		return nil, forge.Conflict("Repository already exists")
	}
	repo := newRepoRecord(name, dir, owner)
	if err := s.Store.CreateRepo(ctx, repo); err != nil {
		return nil, err
	}
	if err := s.initRepoDir(ctx, dir); err != nil {
		if delErr := s.Store.DeleteRepo(context.WithoutCancel(ctx), name); delErr != nil {
			err = errors.Join(err, delErr)
		}
		return nil, fmt.Errorf("creating repository %s: %w", name, err)
	}
	s.log.Info("repository created", "repo", name, "owner", owner.TokenID)
	return repo, nil
}

// newRepoDir validates name (Kod's rule) and returns the directory of the
// repository, checked to stay inside the repos dir.
func (s *Server) newRepoDir(name string) (string, error) {
	if err := forge.ValidateRepoName(name); err != nil {
		return "", err
	}
	dir, err := gitsvc.RepoPath(s.ReposDir, name)
	if err != nil {
		return "", forge.Invalid("Name must be alphanumeric with hyphens and underscores only")
	}
	return dir, nil
}

func newRepoRecord(name, dir string, owner *forge.Principal) *forge.Repo {
	return &forge.Repo{
		Name: name, CreatedAt: forge.NowMillis(), Path: dir, ProtectedBranches: []string{},
		OwnerTokenID: owner.TokenID, OwnerUsername: owner.Username,
	}
}

func (s *Server) initRepoDir(ctx context.Context, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return forge.Conflict("Repository already exists")
		}
		if mkErr := os.MkdirAll(filepath.Dir(dir), 0o755); mkErr != nil {
			return mkErr
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return err
		}
	}
	// From here the directory is ours: remove it if anything fails.
	err := s.Git.InitBare(ctx, dir)
	if err == nil {
		err = gitsvc.InstallHooks(dir, s.HookBinary)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
	}
	return err
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
	ctx := context.WithoutCancel(r.Context())
	runs, err := s.Store.ListRuns(ctx, repo.Name, 0)
	if err != nil {
		return err
	}
	s.Runner.CancelRepo(ctx, repo.Name)
	var errs []error
	err = func() error {
		s.namesMu.Lock()
		defer s.namesMu.Unlock()
		if err := s.Store.DeleteRepo(ctx, repo.Name); err != nil {
			return err
		}
		if err := os.RemoveAll(s.repoDir(repo)); err != nil {
			errs = append(errs, err)
		}
		return nil
	}()
	if err != nil {
		return err
	}
	for _, run := range runs {
		if err := os.RemoveAll(filepath.Join(s.LogsDir, run.ID)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.log.Error("removing repository files", "repo", repo.Name, "err", err)
	}
	s.log.Info("repository deleted", "repo", repo.Name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
