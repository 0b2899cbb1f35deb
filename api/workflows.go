package api

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/workflow"
)

var (
	actWorkflowRead    = forge.Action{Perm: forge.PermWorkflowRead}
	actWorkflowTrigger = forge.Action{Perm: forge.PermWorkflowTrigger}
)

func (s *Server) workflowRoutes() {
	s.handle(http.MethodPost, "/repos/{name}/workflows", actWorkflowTrigger, s.triggerWorkflow)
	s.handle(http.MethodGet, "/repos/{name}/workflows", actWorkflowRead, s.listRuns)
	s.handle(http.MethodGet, "/repos/{name}/workflows/{id}", actWorkflowRead, s.getRun)
	s.handle(http.MethodGet, "/repos/{name}/workflows/{id}/logs", actWorkflowRead, s.runLogs)
	s.handle(http.MethodPost, "/repos/{name}/workflows/{id}/cancel", actWorkflowTrigger, s.cancelRun)
	s.handle(http.MethodGet, "/workflows/status", actWorkflowRead, s.workflowStatus)
}

// triggerWorkflow is Kod API POST /repos/:name/workflows {branch?, commit?,
// files?} -> 202 {id, status:"queued", message}. branch defaults to "main";
// commit defaults to the branch's head and must otherwise be on the branch
// (reachable from it: the run is labelled with the branch, which protected
// branches and `if: branch == ...` trust), else 400 "Commit is not on
// branch '<b>'"; a malformed or unknown commit is 400 "Invalid commit".
// files must stay inside .kod/workflows/ (see cleanWorkflowFiles).
func (s *Server) triggerWorkflow(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		Branch string   `json:"branch"`
		Commit string   `json:"commit"`
		Files  []string `json:"files"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	if req.Branch == "" {
		req.Branch = "main"
	}
	if !forge.ValidBranchName(req.Branch) {
		return forge.Invalid("Invalid branch name")
	}
	files, err := cleanWorkflowFiles(req.Files)
	if err != nil {
		return err
	}
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	dir := s.repoDir(repo)
	rev := "refs/heads/" + req.Branch
	if req.Commit != "" {
		if !isHex(req.Commit, 4, 64) {
			return forge.Invalid("Invalid commit")
		}
		rev = req.Commit
	}
	commit, ok, err := s.Git.ResolveCommit(r.Context(), dir, rev)
	if err != nil {
		return err
	}
	if !ok {
		if req.Commit != "" {
			return forge.Invalid("Invalid commit")
		}
		return forge.Invalid("Branch '%s' does not exist", req.Branch)
	}
	if req.Commit != "" {
		if err := s.checkCommitOnBranch(r.Context(), repo, commit, req.Branch); err != nil {
			return err
		}
	}
	if err := s.checkWorkflowFiles(r.Context(), dir, commit, files); err != nil {
		return err
	}
	run, err := s.Runner.Enqueue(r.Context(), runner.Request{
		Repo: repo.Name, Branch: req.Branch, Commit: commit, Trigger: forge.TriggerManual, Files: files, TokenID: c.p.TokenID,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": run.ID, "status": string(run.Status), "message": "Workflow run queued"})
	return nil
}

// checkWorkflowFiles is ErrInvalid when one of files (cleaned, inside
// workflow.Dir) is not a file at commit, so a trigger naming a missing file
// is refused at once instead of queueing a run that can only fail:
// "Workflow file '<f>' not found at commit <short>".
func (s *Server) checkWorkflowFiles(ctx context.Context, dir, commit string, files []string) error {
	if len(files) == 0 {
		return nil
	}
	present, err := s.Git.ListFiles(ctx, dir, commit, workflow.Dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if !slices.Contains(present, f) {
			return forge.Invalid("Workflow file '%s' not found at commit %.12s", f, commit)
		}
	}
	return nil
}

// checkCommitOnBranch is ErrInvalid unless commit is reachable from
// refs/heads/<branch>: "Branch '<b>' does not exist", "Commit is not on
// branch '<b>'".
func (s *Server) checkCommitOnBranch(ctx context.Context, repo *forge.Repo, commit, branch string) error {
	dir := s.repoDir(repo)
	head, ok, err := s.Git.ResolveCommit(ctx, dir, "refs/heads/"+branch)
	if err != nil {
		return err
	}
	if !ok {
		return forge.Invalid("Branch '%s' does not exist", branch)
	}
	on, err := s.Git.IsAncestor(ctx, dir, commit, head)
	if err != nil {
		return fmt.Errorf("checking that %s is on %s: %w", commit, branch, err)
	}
	if !on {
		return forge.Invalid("Commit is not on branch '%s'", branch)
	}
	return nil
}

// maxFileName is the longest workflow file name accepted in a trigger,
// bytes (file systems stop at 255).
const maxFileName = 255

// cleanWorkflowFiles checks that every path names a file inside
// .kod/workflows/ (Kod: 400 otherwise) and returns them cleaned, without
// repeats, in the order given. At most runner.MaxRunFiles different files,
// names of at most 255 bytes without control characters: the list is kept
// in the run record.
func cleanWorkflowFiles(files []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, f := range files {
		clean := path.Clean(strings.TrimPrefix(f, "./"))
		if f == "" || path.IsAbs(f) || strings.Contains(f, "\\") || path.Dir(clean) != workflow.Dir {
			return nil, forge.Invalid("Workflow files must be inside %s/", workflow.Dir)
		}
		if len(path.Base(clean)) > maxFileName || forge.HasControl(clean) {
			return nil, forge.Invalid("Workflow file names must be at most %d bytes, without control characters", maxFileName)
		}
		if seen[clean] {
			continue
		}
		if len(out) == runner.MaxRunFiles {
			return nil, forge.Invalid("Too many workflow files: a run may have at most %d", runner.MaxRunFiles)
		}
		seen[clean] = true
		out = append(out, clean)
	}
	return out, nil
}

func isHex(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// listRuns is Kod API GET /repos/:name/workflows: newest first, queued runs
// with their position in the global queue.
func (s *Server) listRuns(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	runs, err := s.Store.ListRuns(r.Context(), repo.Name, 0)
	if err != nil {
		return err
	}
	if err := s.fillQueuePositions(r, runs); err != nil {
		return err
	}
	if runs == nil {
		runs = []*forge.Run{}
	}
	writeJSON(w, http.StatusOK, runs)
	return nil
}

func (s *Server) fillQueuePositions(r *http.Request, runs []*forge.Run) error {
	queue, err := s.Store.QueuedRuns(r.Context())
	if err != nil {
		return err
	}
	pos := make(map[string]int, len(queue))
	for i, q := range queue {
		pos[q.ID] = i + 1
	}
	for _, run := range runs {
		run.QueuePosition = pos[run.ID]
	}
	return nil
}

// runOf loads the {id} run of the {name} repository; a run of another
// repository is "Workflow run not found" too.
func (s *Server) runOf(r *http.Request, c *call) (*forge.Run, error) {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return nil, err
	}
	run, err := s.Store.GetRun(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return nil, err
	}
	if run.RepoName != repo.Name {
		return nil, forge.NotFound("Workflow run not found")
	}
	return run, nil
}

// getRun is Kod API GET /repos/:name/workflows/:id.
func (s *Server) getRun(w http.ResponseWriter, r *http.Request, c *call) error {
	run, err := s.runOf(r, c)
	if err != nil {
		return err
	}
	if err := s.fillQueuePositions(r, []*forge.Run{run}); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// cancelRun is POST /repos/:name/workflows/:id/cancel -> 202.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request, c *call) error {
	run, err := s.runOf(r, c)
	if err != nil {
		return err
	}
	if err := s.Runner.Cancel(r.Context(), run.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"id": run.ID, "message": "Workflow run cancellation requested"})
	return nil
}

// workflowStatus is Kod API GET /workflows/status: counts by status and the
// 10 most recent runs, over the repositories the token can read. The store
// counts without keeping records, so the answer costs ten records of
// memory however many runs there are.
func (s *Server) workflowStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	repos, err := s.Store.ListRepos(r.Context())
	if err != nil {
		return err
	}
	var names []string
	for _, repo := range repos {
		if c.p.CanAccess(repo) {
			names = append(names, repo.Name)
		}
	}
	counts, recent, err := s.Store.SummarizeRuns(r.Context(), names, 10)
	if err != nil {
		return err
	}
	summary := map[forge.RunStatus]int{forge.RunQueued: 0, forge.RunRunning: 0, forge.RunCompleted: 0, forge.RunFailed: 0}
	for st, n := range counts {
		summary[st] += n
	}
	if err := s.fillQueuePositions(r, recent); err != nil {
		return err
	}
	if recent == nil {
		recent = []*forge.Run{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"summary": summary, "recent": recent})
	return nil
}
