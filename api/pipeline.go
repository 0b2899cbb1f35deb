package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
)

// The routes around a run's steps: caches, artifacts and re-runs.
func (s *Server) pipelineRoutes() {
	s.handle(http.MethodGet, "/repos/{name}/caches", actWorkflowRead, s.listCaches)
	s.handle(http.MethodDelete, "/repos/{name}/caches/{key:.+}", actWorkflowTrigger, s.deleteCache)
	s.handle(http.MethodGet, "/repos/{name}/workflows/{id}/artifacts", actWorkflowRead, s.listArtifacts)
	s.handle(http.MethodGet, "/repos/{name}/workflows/{id}/artifacts/{artifact:.+}", actWorkflowRead, s.downloadArtifact)
	s.handle(http.MethodPost, "/repos/{name}/workflows/{id}/rerun", actWorkflowTrigger, s.rerunRun)
}

// cacheView is a cache as the API shows it.
type cacheView struct {
	Key        string       `json:"key"`
	Branch     string       `json:"branch"`
	Size       int64        `json:"size"`
	CreatedAt  forge.Millis `json:"createdAt"`
	LastUsedAt forge.Millis `json:"lastUsedAt"`
}

// listCaches is GET /repos/:name/caches -> 200 [{key, branch, size,
// createdAt, lastUsedAt}], least recently used (next to be evicted) first;
// size in bytes, times in ms.
func (s *Server) listCaches(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	list, err := s.Store.ListCaches(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	out := make([]cacheView, 0, len(list))
	for _, c := range list {
		out = append(out, cacheView{Key: c.Key, Branch: c.Branch, Size: c.Size, CreatedAt: c.CreatedAt, LastUsedAt: c.LastUsedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteCache is DELETE /repos/:name/caches/:key?branch=B -> 204: the
// cache of key on branch B, or without branch on every branch; 404 "Cache
// not found" when there is none.
func (s *Server) deleteCache(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	key := mux.Vars(r)["key"]
	branch, only := r.URL.Query()["branch"]
	var branches []string
	if only {
		branches = branch
	} else {
		list, err := s.Store.ListCaches(r.Context(), repo.ID)
		if err != nil {
			return err
		}
		for _, c := range list {
			if c.Key == key {
				branches = append(branches, c.Branch)
			}
		}
	}
	if len(branches) == 0 {
		return forge.NotFound("Cache not found")
	}
	for _, b := range branches {
		if s.Caches != nil {
			err = s.Caches.Delete(r.Context(), repo.ID, b, key)
		} else {
			_, err = s.Store.DeleteCache(r.Context(), repo.ID, b, key)
		}
		if err != nil {
			return err
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listArtifacts is GET /repos/:name/workflows/:id/artifacts -> 200 [{name,
// size, step, stepIndex, sha256, createdAt}], sorted by name.
func (s *Server) listArtifacts(w http.ResponseWriter, r *http.Request, c *call) error {
	run, err := s.runOf(r, c)
	if err != nil {
		return err
	}
	list, err := s.Store.ListArtifacts(r.Context(), run.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// downloadArtifact is GET /repos/:name/workflows/:id/artifacts/:name (the
// name may contain '/') -> 200 with the file, its Content-Length, an
// attachment Content-Disposition with the name's last component and
// X-Kod-Sha256; 404 "Artifact not found".
func (s *Server) downloadArtifact(w http.ResponseWriter, r *http.Request, c *call) error {
	run, err := s.runOf(r, c)
	if err != nil {
		return err
	}
	name := mux.Vars(r)["artifact"]
	if forge.ValidateArtifactName(name) != nil {
		return forge.NotFound("Artifact not found")
	}
	a, err := s.Store.GetArtifact(r.Context(), run.ID, name)
	if err != nil {
		return err
	}
	if s.Artifacts == nil {
		return forge.NotFound("Artifact not found")
	}
	f, err := s.Artifacts.Open(a)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	ctype := "application/octet-stream"
	if strings.HasSuffix(name, ".tar.gz") {
		ctype = "application/gzip"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(name)}))
	h.Set("X-Kod-Sha256", a.SHA256)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, f); err != nil && !errors.Is(err, r.Context().Err()) {
		s.log.Warn("artifact download cut short", "run", run.ID, "artifact", name, "err", err)
	}
	return nil
}

// rerunRun is POST /repos/:name/workflows/:id/rerun {"failedOnly": bool}
// -> 202 {id, status: "queued", rerunOf, message}; 409 while the run is
// queued or running, or for a failed-only re-run of a run where nothing
// failed.
func (s *Server) rerunRun(w http.ResponseWriter, r *http.Request, c *call) error {
	var req struct {
		FailedOnly bool `json:"failedOnly"`
	}
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			return err
		}
	}
	prev, err := s.runOf(r, c)
	if err != nil {
		return err
	}
	run, err := s.Runner.Rerun(r.Context(), prev, req.FailedOnly, c.p.TokenID)
	if err != nil {
		return err
	}
	msg := "Workflow run queued"
	if req.FailedOnly {
		msg = fmt.Sprintf("Workflow run queued; %d workflow(s) reused", len(run.Reuse))
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": run.ID, "status": run.Status, "rerunOf": prev.ID, "message": msg})
	return nil
}

// artifactsDir is where artifact files live, for backups ("" = none).
func (s *Server) artifactsDir() string {
	if s.Artifacts == nil {
		return ""
	}
	return s.Artifacts.Dir
}
