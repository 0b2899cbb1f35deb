package repos

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/webhook"
)

// PreReceive implements gitsvc.HookHandler: the forge ref policy
// (protected branches, forge.CheckRefUpdates) decides on the push as a
// whole; any refused update refuses every update.
func (h *Service) PreReceive(ctx context.Context, push *gitsvc.Push, updates []forge.RefUpdate) error {
	repo, err := h.repoOf(ctx, push)
	if err != nil {
		return err
	}
	return forge.CheckRefUpdates(push.Principal, repo, updates)
}

// repoOf loads the record of the pushed repository by its id (by name for
// a push registered without one), so a push in flight during a rename
// finds the repository under its new name.
func (h *Service) repoOf(ctx context.Context, push *gitsvc.Push) (*forge.Repo, error) {
	var repo *forge.Repo
	var err error
	if push.RepoID != "" {
		repo, err = h.cfg.Store.GetRepoByID(ctx, push.RepoID)
	} else {
		repo, err = h.cfg.Store.GetRepo(ctx, push.Repo)
	}
	if err != nil {
		return nil, err
	}
	if repo.OwnerUsername == "" && repo.OwnerTokenID != "" && push.Principal.TokenID == "" {
		// A record without OwnerUsername: an SSH user still owns it by the
		// username of its creating token, as the SSH server decided.
		if t, err := h.cfg.Store.GetToken(ctx, repo.OwnerTokenID); err == nil {
			repo.OwnerUsername = t.Username
		}
	}
	return repo, nil
}

// PostReceive implements gitsvc.HookHandler: after the refs moved it gives
// the repository a default branch when it has none (see fixHead), queues
// one run per pushed branch with workflows, and records the push's webhook
// deliveries (with the runs), returning lines for the pusher.
func (h *Service) PostReceive(ctx context.Context, push *gitsvc.Push, updates []forge.RefUpdate) []string {
	repo, err := h.repoOf(ctx, push)
	if err != nil {
		h.log.Error("post-receive: reading the repository", "repo", push.Repo, "err", err)
		return []string{"kod: the repository of this push could not be read; no runs were queued"}
	}
	msgs := h.fixHead(ctx, repo, push.Principal, updates)
	runs, runMsgs := h.cfg.Runs.OnPush(ctx, repo.Name, push.Principal.TokenID, updates)
	msgs = append(msgs, runMsgs...)
	if err := h.notifyPush(ctx, repo.Name, updates, runs); err != nil {
		h.log.Error("recording push webhook deliveries", "repo", repo.Name, "err", err)
		msgs = append(msgs, "kod: could not record webhook deliveries for this push")
	}
	return msgs
}

// notifyPush records one push delivery per updated branch, with the run
// queued for it; the dispatcher sends them, never this hook.
func (h *Service) notifyPush(ctx context.Context, repo string, updates []forge.RefUpdate, runs []*forge.Run) error {
	if h.cfg.Webhooks == nil {
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
	return h.cfg.Webhooks.Push(ctx, repo, events)
}

// fixHead points HEAD at an existing branch when it names none after the
// push (a new repository, or its default branch deleted), so clones check
// something out and schedules have a branch: `main`, else `master`, when
// the repository has it, whoever pushed; otherwise the first branch pushed,
// but only by the owner or an admin. Another user's push leaves HEAD as it
// is and says so: a collaborator's first feature branch must not become
// the repository's default for good behind its owner's back (the owner
// pushes the branch, or sets it with PATCH /repos/:name {defaultBranch}).
func (h *Service) fixHead(ctx context.Context, repo *forge.Repo, p *forge.Principal, updates []forge.RefUpdate) []string {
	dir := h.Dir(repo)
	branches, err := h.cfg.Git.Branches(ctx, dir)
	if err != nil || len(branches) == 0 {
		return nil
	}
	head, err := h.cfg.Git.HeadBranch(ctx, dir)
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
		if p == nil || !(p.IsAdmin() || p.IsOwner(repo) && p.Has(forge.PermRepoWrite)) {
			return []string{fmt.Sprintf("kod: the repository has no default branch yet (HEAD names %q, which does not exist); its owner can push one or set it with PATCH /repos/%s {\"defaultBranch\": ...}", head, repo.Name)}
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
	if err := h.cfg.Git.SetHead(ctx, dir, pick); err != nil {
		h.log.Warn("pointing HEAD at a branch", "repo", repo.Name, "branch", pick, "err", err)
		return nil
	}
	h.log.Info("default branch set by a push", "repo", repo.Name, "branch", pick)
	return []string{fmt.Sprintf("kod: default branch set to %s", pick)}
}

// MissedPostReceive implements gitsvc.MissedPostReceiver: a push whose
// post-receive hook never reached the server still gets its runs, default
// branch and deliveries, for the accepted updates that landed (the ref now
// holds the new value, or is gone for a deletion), so nothing is left
// half-way. What PostReceive would have told the pusher goes to the log.
func (h *Service) MissedPostReceive(ctx context.Context, push *gitsvc.Push, accepted []forge.RefUpdate) {
	repo, err := h.repoOf(ctx, push)
	if err != nil {
		h.log.Error("finishing a push without its hook: reading the repository", "repo", push.Repo, "err", err)
		return
	}
	dir := h.Dir(repo)
	var landed []forge.RefUpdate
	for _, u := range accepted {
		now, err := h.refValue(ctx, dir, u.Ref)
		if err != nil {
			h.log.Error("reading a pushed ref", "repo", push.Repo, "ref", u.Ref, "err", err)
			continue
		}
		if now == u.New || u.IsDelete() && now == "" {
			landed = append(landed, u)
		}
	}
	if len(landed) == 0 {
		return
	}
	for _, m := range h.PostReceive(ctx, push, landed) {
		h.log.Info("push finished without its hook", "repo", push.Repo, "message", m)
	}
}

// refValue returns the object id ref points at in dir, "" if it does not
// exist.
func (h *Service) refValue(ctx context.Context, dir, ref string) (string, error) {
	if _, err := gitsvc.UserArg(ref); err != nil {
		return "", err
	}
	out, err := h.cfg.Git.Output(ctx, &gitsvc.Cmd{Dir: dir, Args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", ref}})
	if err != nil {
		if ge, ok := err.(*gitsvc.Error); ok && ge.Stderr == "" {
			return "", nil // no such ref
		}
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

var _ gitsvc.MissedPostReceiver = (*Service)(nil)
