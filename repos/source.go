package repos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/workflow"
)

// Source is the content of the bare repositories as the runner reads it
// (runner.Source and runner.Heads): workflow files and trees at a commit,
// and each repository's default branch.
type Source struct {
	Git      *gitsvc.Git
	ReposDir string // bare repositories live at <ReposDir>/<name>.git
	// PublicURL is the server's external base URL (KOD_PUBLIC_URL), from
	// which a workspace's remote origin is made; "" writes no remote.
	PublicURL string
}

// WorkflowFiles implements runner.Source: .kod/workflows/*.toml at
// commit (dot files skipped), each too large or unreadable file with its
// File.Err.
func (s *Source) WorkflowFiles(ctx context.Context, repo, commit string) ([]runner.File, error) {
	dir, err := gitsvc.RepoPath(s.ReposDir, repo)
	if err != nil {
		return nil, err
	}
	paths, err := s.Git.ListFiles(ctx, dir, commit, workflow.Dir)
	if err != nil {
		return nil, err
	}
	var files []runner.File
	for _, p := range paths {
		if path.Ext(p) != ".toml" || strings.HasPrefix(path.Base(p), ".") {
			continue
		}
		data, err := s.Git.ReadFile(ctx, dir, commit, p, gitsvc.MaxWorkflowFileSize)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		files = append(files, runner.File{Path: p, Data: data, Err: fileError(err)})
	}
	return files, nil
}

// fileError is what a run says about a workflow file that could not be
// read: it fails the runs of that file only, like a parse error.
func fileError(err error) error {
	var big *gitsvc.FileTooLargeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &big):
		return fmt.Errorf("file is %d bytes; a workflow file may be at most %d", big.Size, big.Max)
	}
	return fmt.Errorf("the file could not be read: %w", err)
}

// Archive implements runner.Source: the tree at commit as a tar stream.
func (s *Source) Archive(ctx context.Context, repo, commit string, w io.Writer) error {
	dir, err := gitsvc.RepoPath(s.ReposDir, repo)
	if err != nil {
		return err
	}
	return s.Git.Archive(ctx, dir, commit, w)
}

// DefaultBranch implements runner.Heads: the branch HEAD names and its
// commit (ok false for a detached HEAD or a branch without commits).
func (s *Source) DefaultBranch(ctx context.Context, repo string) (branch, commit string, ok bool, err error) {
	dir, err := gitsvc.RepoPath(s.ReposDir, repo)
	if err != nil {
		return "", "", false, err
	}
	branch, err = s.Git.HeadBranch(ctx, dir)
	if err != nil || branch == "" {
		return "", "", false, err
	}
	commit, ok, err = s.Git.ResolveCommit(ctx, dir, "refs/heads/"+branch)
	return branch, commit, ok, err
}

var (
	_ runner.Source = (*Source)(nil)
	_ runner.Heads  = (*Source)(nil)

	_ runner.Checkouts = (*Source)(nil)
)

// Checkout writes the workspace of a run as a tar stream: a git working
// tree of commit with its .git (see gitsvc.Git.Checkout), HEAD on the local
// branch (the pushed branch, without refs/heads/; "" leaves HEAD detached),
// depth commits of history (0 = all), remote origin at the repository's
// clone URL (<PublicURL>/repos/<name>.git, no credentials; none when
// PublicURL is ""). Errors: an unknown repository or commit, an invalid
// branch or depth, git failing, or w failing.
func (s *Source) Checkout(ctx context.Context, repo, commit, branch string, depth int, w io.Writer) error {
	dir, err := gitsvc.RepoPath(s.ReposDir, repo)
	if err != nil {
		return err
	}
	remote := ""
	if s.PublicURL != "" {
		remote = strings.TrimRight(s.PublicURL, "/") + "/repos/" + repo + ".git"
	}
	return s.Git.Checkout(ctx, dir, gitsvc.CheckoutOptions{Commit: commit, Branch: branch, Depth: depth, RemoteURL: remote}, w)
}
