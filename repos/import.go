package repos

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/netpolicy"
)

// importPrefix starts the temporary directories imports clone into, inside
// the repos dir; repository names cannot start with '.', so they never
// collide with a repository.
const importPrefix = ".import-"

// Import clones source into a new repository name owned by p (Kod API
// POST /repos/import): name "" is derived from the source's last path
// segment without ".git". An import never writes into an existing
// repository, so it cannot move a protected branch. Errors: ErrInvalid
// ("Source is required", "Could not derive repository name from source",
// an invalid or refused source, an invalid name), ErrForbidden (a local
// path or file:// for a non-admin), ErrConflict ("Repository already
// exists"), *ImportError when git fails (its message is meant for users).
func (s *Service) Import(ctx context.Context, source, name string, p *forge.Principal) (*forge.Repo, error) {
	source = strings.TrimSpace(source)
	if source == "" {
		return nil, forge.Invalid("Source is required")
	}
	remote, err := gitsvc.ParseRemote(source)
	if err != nil {
		return nil, forge.Invalid("Invalid source: %v", err)
	}
	if remote.Local && !p.IsAdmin() {
		return nil, forge.Forbidden("Only admin tokens can import from local paths or file:// URLs")
	}
	if name == "" {
		if name = remote.NameHint(); name == "" {
			return nil, forge.Invalid("Could not derive repository name from source")
		}
	}
	dir, err := s.newRepoDir(name)
	if err != nil {
		return nil, err
	}
	if err := s.nameFree(ctx, name, dir); err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if !remote.Local {
		if addrs, err = s.checkSourceHost(ctx, remote); err != nil {
			return nil, err
		}
	}
	return s.importInto(ctx, remote, addrs, name, dir, p)
}

// ImportError is a failed clone as users see it (Kod: 500 "Failed to
// import repository: <git stderr>"), the one place where git's own words
// reach users; server paths and the source's password are taken out.
type ImportError struct{ Msg string }

func (e *ImportError) Error() string { return "Failed to import repository: " + e.Msg }

// nameFree is 409 "Repository already exists" when name is taken in the
// store or on disk.
func (s *Service) nameFree(ctx context.Context, name, dir string) error {
	_, err := s.cfg.Store.GetRepo(ctx, name)
	switch {
	case err == nil:
		return forge.Conflict("Repository already exists")
	case !errors.Is(err, forge.ErrNotFound):
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		return forge.Conflict("Repository already exists")
	}
	return nil
}

// checkSourceHost applies the host policy to the source's host and returns
// the addresses git is pinned to.
func (s *Service) checkSourceHost(ctx context.Context, remote *gitsvc.Remote) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	addrs, err := s.cfg.HostPolicy.Resolve(ctx, remote.Host)
	var refused *netpolicy.RefusedError
	switch {
	case errors.As(err, &refused):
		return nil, forge.Invalid("Source host '%s' is not allowed: it resolves to a %s address (see %s)", remote.Host, refused.Class, netpolicy.Setting)
	case err != nil:
		return nil, forge.Invalid("Could not resolve source host '%s'", remote.Host)
	}
	return addrs, nil
}

// importInto clones remote into a temporary directory inside the repos dir,
// prepares it (source forgotten, HEAD on a branch, kod's hooks), then
// claims the name: the record is stored and the directory moved into place
// under namesMu. Any failure removes the temporary directory.
func (s *Service) importInto(ctx context.Context, remote *gitsvc.Remote, addrs []netip.Addr, name, dir string, p *forge.Principal) (*forge.Repo, error) {
	root := filepath.Dir(dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	tmp := filepath.Join(root, importPrefix+forge.NewID()+".git")
	placed := false
	defer func() {
		if !placed {
			if err := os.RemoveAll(tmp); err != nil {
				s.log.Error("removing a failed import", "dir", tmp, "err", err)
			}
		}
	}()
	select {
	case s.importSlots <- struct{}{}:
		defer func() { <-s.importSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	cloneCtx, cancel := context.WithTimeout(ctx, s.cfg.ImportTimeout)
	defer cancel()
	err := s.cfg.Git.CloneMirror(cloneCtx, remote, tmp, gitsvc.MirrorOptions{AllowLocal: p.IsAdmin(), Addrs: addrs})
	if err != nil {
		return nil, s.importFailure(err, remote, tmp, name)
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.cfg.Git.FinishMirror(ctx, tmp); err != nil {
		return nil, fmt.Errorf("preparing imported repository %s: %w", name, err)
	}
	if err := gitsvc.InstallHooks(tmp, s.cfg.HookBinary); err != nil {
		return nil, fmt.Errorf("installing hooks of imported repository %s: %w", name, err)
	}
	s.namesMu.Lock()
	defer s.namesMu.Unlock()
	if _, err := os.Lstat(dir); err == nil {
		return nil, forge.Conflict("Repository already exists")
	}
	repo := newRepoRecord(name, dir, p)
	if err := s.cfg.Store.CreateRepo(ctx, repo); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if delErr := s.cfg.Store.DeleteRepo(ctx, name); delErr != nil {
			err = errors.Join(err, delErr)
		}
		return nil, fmt.Errorf("moving imported repository %s into place: %w", name, err)
	}
	placed = true
	s.log.Info("repository imported", "repo", name, "source", remote.Redacted(), "owner", p.TokenID)
	return repo, nil
}

// maxImportError caps git's error text in the 500 answer, bytes.
const maxImportError = 2000

// importFailure is Kod's 500 "Failed to import repository: <git stderr>",
// the one place where git's own words reach users. Server paths and the
// source's password are taken out.
func (s *Service) importFailure(err error, remote *gitsvc.Remote, tmp, name string) error {
	s.log.Warn("import failed", "source", remote.Redacted(), "err", err)
	msg := "git clone failed"
	var ge *gitsvc.Error
	if errors.As(err, &ge) && strings.TrimSpace(ge.Stderr) != "" {
		msg = strings.TrimSpace(ge.Stderr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("the clone did not finish within %s", s.cfg.ImportTimeout)
	}
	msg = strings.ReplaceAll(msg, tmp, name+".git")
	if root, err := filepath.Abs(s.cfg.ReposDir); err == nil {
		msg = strings.ReplaceAll(msg, root, "<repos>")
	}
	msg = strings.ReplaceAll(msg, remote.Raw, remote.Redacted())
	if len(msg) > maxImportError {
		msg = "..." + msg[len(msg)-maxImportError:]
	}
	return &ImportError{Msg: msg}
}

// RemoveStaleImports deletes temporary import directories a crash left in
// the repos dir. Call it at start, before serving.
func (s *Service) RemoveStaleImports() error {
	entries, err := os.ReadDir(s.cfg.ReposDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), importPrefix) {
			errs = append(errs, os.RemoveAll(filepath.Join(s.cfg.ReposDir, e.Name())))
		}
	}
	return errors.Join(errs...)
}
