package runner

import (
	"context"
	"io"
)

// Checkouts is implemented by a Source that can write a run's workspace as
// a git checkout rather than a plain tree (repos.Source).
type Checkouts interface {
	// Checkout writes a tar stream of a git working tree of commit with its
	// .git: HEAD on the local branch (the pushed branch, without
	// refs/heads/; "" for a detached HEAD), depth commits of history (0 =
	// all), remote origin at the repository's URL.
	Checkout(ctx context.Context, repo, commit, branch string, depth int, w io.Writer) error
}

// writeWorkspace writes the tar stream a run's workspace is loaded from: a
// git checkout (branch and depth as for Checkouts.Checkout) when the
// source can make one, else the tree of the commit (Source.Archive).
func (r *Runner) writeWorkspace(ctx context.Context, repo, commit, branch string, depth int, w io.Writer) error {
	if c, ok := r.src.(Checkouts); ok {
		return c.Checkout(ctx, repo, commit, branch, depth, w)
	}
	return r.src.Archive(ctx, repo, commit, w)
}
