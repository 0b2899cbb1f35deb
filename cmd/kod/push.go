package main

import (
	"context"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/webhook"
)

// pushHandler is the server side of the git hooks: pre-receive applies the
// forge ref policy, post-receive queues runs.
type pushHandler struct {
	store interface {
		forge.RepoStore
		forge.TokenStore
	}
	git      *gitsvc.Git
	runner   *runner.Runner
	webhooks pushNotifier
	reposDir string
	log      *slog.Logger
}

// PreReceive implements gitsvc.HookHandler.
func (h *pushHandler) PreReceive(ctx context.Context, push *gitsvc.Push, updates []forge.RefUpdate) error {
	repo, err := h.store.GetRepo(ctx, push.Repo)
	if err != nil {
		return err
	}
	if repo.OwnerUsername == "" && repo.OwnerTokenID != "" && push.Principal.TokenID == "" {
		// A record without OwnerUsername: an SSH user still owns it by the
		// username of its creating token, as the SSH server decided.
		if t, err := h.store.GetToken(ctx, repo.OwnerTokenID); err == nil {
			repo.OwnerUsername = t.Username
		}
	}
	return forge.CheckRefUpdates(push.Principal, repo, updates)
}

// PostReceive implements gitsvc.HookHandler: it queues runs and, when HEAD
// names a branch that does not exist, points it at the first pushed branch
// so clones check something out.
func (h *pushHandler) PostReceive(ctx context.Context, push *gitsvc.Push, updates []forge.RefUpdate) []string {
	h.fixHead(ctx, push.Repo, updates)
	runs, msgs := h.runner.OnPush(ctx, push.Repo, push.Principal.TokenID, updates)
	if err := h.notifyPush(ctx, push.Repo, updates, runs); err != nil {
		h.log.Error("recording push webhook deliveries", "repo", push.Repo, "err", err)
		msgs = append(msgs, "kod: could not record webhook deliveries for this push")
	}
	return msgs
}

// pushNotifier records push deliveries (webhook.Dispatcher).
type pushNotifier interface {
	Push(ctx context.Context, repo string, events []webhook.PushEvent) error
}

// notifyPush records one push delivery per updated branch, with the run
// queued for it; the dispatcher sends them, never this hook.
func (h *pushHandler) notifyPush(ctx context.Context, repo string, updates []forge.RefUpdate, runs []*forge.Run) error {
	if h.webhooks == nil {
		return nil
	}
	events := make([]webhook.PushEvent, 0, len(updates))
	for _, u := range updates {
		ev := webhook.PushEvent{Update: u}
		if b, ok := u.Branch(); ok {
			for _, run := range runs {
				if run.Branch == b && run.Commit == u.New {
					ev.RunID = run.ID
				}
			}
		}
		events = append(events, ev)
	}
	return h.webhooks.Push(ctx, repo, events)
}

func (h *pushHandler) fixHead(ctx context.Context, repo string, updates []forge.RefUpdate) {
	dir, err := gitsvc.RepoPath(h.reposDir, repo)
	if err != nil {
		return
	}
	branches, err := h.git.Branches(ctx, dir)
	if err != nil {
		return
	}
	head, err := h.git.HeadBranch(ctx, dir)
	if err != nil || slices.Contains(branches, head) {
		return
	}
	for _, u := range updates {
		if b, ok := u.Branch(); ok && !u.IsDelete() {
			if err := h.git.SetHead(ctx, dir, b); err != nil {
				h.log.Warn("pointing HEAD at the pushed branch", "repo", repo, "branch", b, "err", err)
			}
			return
		}
	}
}

// gitSource implements runner.Source over the bare repositories.
type gitSource struct {
	git      *gitsvc.Git
	reposDir string
}

func (s *gitSource) WorkflowFiles(ctx context.Context, repo, commit string) ([]runner.File, error) {
	dir, err := gitsvc.RepoPath(s.reposDir, repo)
	if err != nil {
		return nil, err
	}
	paths, err := s.git.ListFiles(ctx, dir, commit, workflow.Dir)
	if err != nil {
		return nil, err
	}
	var files []runner.File
	for _, p := range paths {
		if path.Ext(p) != ".toml" || strings.HasPrefix(path.Base(p), ".") {
			continue
		}
		data, err := s.git.ReadFile(ctx, dir, commit, p, gitsvc.MaxWorkflowFileSize)
		if err != nil {
			return nil, err
		}
		files = append(files, runner.File{Path: p, Data: data})
	}
	return files, nil
}

func (s *gitSource) Archive(ctx context.Context, repo, commit string, w io.Writer) error {
	dir, err := gitsvc.RepoPath(s.reposDir, repo)
	if err != nil {
		return err
	}
	return s.git.Archive(ctx, dir, commit, w)
}
