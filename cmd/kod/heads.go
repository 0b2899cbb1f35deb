package main

import (
	"context"

	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/runner"
)

// DefaultBranch implements runner.Heads: the branch HEAD names and its
// commit (ok false for a detached HEAD or a branch without commits).
func (s *gitSource) DefaultBranch(ctx context.Context, repo string) (branch, commit string, ok bool, err error) {
	dir, err := gitsvc.RepoPath(s.reposDir, repo)
	if err != nil {
		return "", "", false, err
	}
	branch, err = s.git.HeadBranch(ctx, dir)
	if err != nil || branch == "" {
		return "", "", false, err
	}
	commit, ok, err = s.git.ResolveCommit(ctx, dir, "refs/heads/"+branch)
	return branch, commit, ok, err
}

var _ runner.Heads = (*gitSource)(nil)
