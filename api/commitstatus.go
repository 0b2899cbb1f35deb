package api

import (
	"context"
	"net/http"
	"path"
	"strings"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner/workflow"
)

func (s *Server) statusRoutes() {
	s.handle(http.MethodGet, "/repos/{name}/commits/{sha}/status", actWorkflowRead, s.commitStatus)
	s.router.Handle("/repos/{name}/badge.svg", http.HandlerFunc(s.badge)).Methods(http.MethodGet, http.MethodHead)
}

// commitStatusJSON is GET /repos/:name/commits/:sha/status.
type commitStatusJSON struct {
	SHA   string            `json:"sha"`
	State forge.CommitState `json:"state"`
	Runs  []statusRunJSON   `json:"runs"`
}

type statusRunJSON struct {
	ID          string          `json:"id"`
	Status      forge.RunStatus `json:"status"`
	Files       []string        `json:"files"`                 // the workflow files this run decides
	CompletedAt forge.Millis    `json:"completedAt,omitempty"` // ms since the epoch; absent while not done
}

// commitStatus is GET /repos/:name/commits/:sha/status (workflow:read;
// kod's addition, after the combined status of other forges): the state
// of a commit from the newest run of each of its workflow files (see
// forge.CombineCommitRuns): success, failure, pending, or none without
// runs. sha is a full or abbreviated commit id (4 to 64 hex digits); 400
// "Invalid commit SHA", 404 "Commit not found".
func (s *Server) commitStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	sha := mux.Vars(r)["sha"]
	if !isHex(sha, 4, 64) {
		return forge.Invalid("Invalid commit SHA")
	}
	oid, ok, err := s.Git.ResolveCommit(r.Context(), s.repoDir(repo), strings.ToLower(sha))
	if err != nil {
		return err
	}
	if !ok {
		return forge.NotFound("Commit not found")
	}
	runs, err := s.Store.ListRuns(r.Context(), repo.Name, 0)
	if err != nil {
		return err
	}
	var mine []*forge.Run
	for _, run := range runs {
		if run.Commit == oid {
			mine = append(mine, run)
		}
	}
	all, err := s.workflowFilesAt(r.Context(), repo, oid)
	if err != nil {
		return err
	}
	state, picked, files := forge.CombineCommitRuns(mine, all)
	out := commitStatusJSON{SHA: oid, State: state, Runs: []statusRunJSON{}}
	for _, run := range picked {
		out.Runs = append(out.Runs, statusRunJSON{ID: run.ID, Status: run.Status, Files: files[run.ID], CompletedAt: run.CompletedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// workflowFilesAt is the workflow files (.kod/workflows/*.toml, as the
// runner reads them) at commit.
func (s *Server) workflowFilesAt(ctx context.Context, repo *forge.Repo, commit string) ([]string, error) {
	paths, err := s.Git.ListFiles(ctx, s.repoDir(repo), commit, workflow.Dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, p := range paths {
		if path.Ext(p) == ".toml" && !strings.HasPrefix(path.Base(p), ".") {
			files = append(files, p)
		}
	}
	return files, nil
}
