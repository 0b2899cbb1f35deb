package main

import (
	"context"
	"errors"
	"fmt"
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
	repo, err := h.repoOf(ctx, push)
	if err != nil {
		return err
	}
	return forge.CheckRefUpdates(push.Principal, repo, updates)
}

// repoOf loads the record of the pushed repository.
func (h *pushHandler) repoOf(ctx context.Context, push *gitsvc.Push) (*forge.Repo, error) {
	repo, err := h.store.GetRepo(ctx, push.Repo)
	if err != nil {
		return nil, err
	}
	if repo.OwnerUsername == "" && repo.OwnerTokenID != "" && push.Principal.TokenID == "" {
		// A record without OwnerUsername: an SSH user still owns it by the
		// username of its creating token, as the SSH server decided.
		if t, err := h.store.GetToken(ctx, repo.OwnerTokenID); err == nil {
			repo.OwnerUsername = t.Username
		}
	}
	return repo, nil
}

// PostReceive implements gitsvc.HookHandler: it gives the repository a
// default branch when it has none (see fixHead), then queues runs.
func (h *pushHandler) PostReceive(ctx context.Context, push *gitsvc.Push, updates []forge.RefUpdate) []string {
	msgs := h.fixHead(ctx, push, updates)
	runs, runMsgs := h.runner.OnPush(ctx, push.Repo, push.Principal.TokenID, updates)
	msgs = append(msgs, runMsgs...)
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

// fixHead points HEAD at an existing branch when it names none after the
// push (a new repository, or its default branch deleted), so clones check
// something out and schedules have a branch: `main`, else `master`, when
// the repository has it, whoever pushed; otherwise the first branch pushed,
// but only by the owner or an admin. Another user's push leaves HEAD as it
// is and says so: a collaborator's first feature branch must not become
// the repository's default for good behind its owner's back (the owner
// pushes the branch, or sets it with PATCH /repos/:name {defaultBranch}).
func (h *pushHandler) fixHead(ctx context.Context, push *gitsvc.Push, updates []forge.RefUpdate) []string {
	dir, err := gitsvc.RepoPath(h.reposDir, push.Repo)
	if err != nil {
		return nil
	}
	branches, err := h.git.Branches(ctx, dir)
	if err != nil || len(branches) == 0 {
		return nil
	}
	head, err := h.git.HeadBranch(ctx, dir)
	if err != nil || slices.Contains(branches, head) {
		return nil
	}
	pick := ""
	for _, b := range []string{"main", "master"} {
		if slices.Contains(branches, b) {
			pick = b
			break
		}
	}
	if pick == "" {
		repo, err := h.repoOf(ctx, push)
		if err != nil {
			return nil
		}
		if p := push.Principal; p == nil || !(p.IsAdmin() || p.IsOwner(repo) && p.Has(forge.PermRepoWrite)) {
			return []string{fmt.Sprintf("kod: the repository has no default branch yet (HEAD names %q, which does not exist); its owner can push one or set it with PATCH /repos/%s {\"defaultBranch\": ...}", head, push.Repo)}
		}
		for _, u := range updates {
			if b, ok := u.Branch(); ok && !u.IsDelete() && slices.Contains(branches, b) {
				pick = b
				break
			}
		}
	}
	if pick == "" {
		return nil
	}
	if err := h.git.SetHead(ctx, dir, pick); err != nil {
		h.log.Warn("pointing HEAD at a branch", "repo", push.Repo, "branch", pick, "err", err)
		return nil
	}
	h.log.Info("default branch set by a push", "repo", push.Repo, "branch", pick)
	return []string{fmt.Sprintf("kod: default branch set to %s", pick)}
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

func (s *gitSource) Archive(ctx context.Context, repo, commit string, w io.Writer) error {
	dir, err := gitsvc.RepoPath(s.reposDir, repo)
	if err != nil {
		return err
	}
	return s.git.Archive(ctx, dir, commit, w)
}
