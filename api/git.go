package api

import (
	"errors"
	"net/http"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// Git smart HTTP at /repos/:name.git (Kod: Basic auth with the token as
// password). The name pattern keeps these routes apart from /repos/{name}.
const gitRepoPath = "/repos/{name:[a-zA-Z0-9_-]+}.git"

func (s *Server) gitRoutes() {
	s.handle(http.MethodGet, gitRepoPath+"/info/refs", actRepoRead, s.gitInfoRefs)
	s.handle(http.MethodPost, gitRepoPath+"/git-upload-pack", actRepoRead, s.gitRPC(gitsvc.UploadPack))
	s.handle(http.MethodPost, gitRepoPath+"/git-receive-pack", actRepoWrite, s.gitRPC(gitsvc.ReceivePack))
}

// gitInfoRefs serves the ref advertisement; for git-receive-pack the
// principal must also be allowed to push, so a read-only token fails before
// it uploads a pack.
func (s *Server) gitInfoRefs(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, ok := gitsvc.ParseService(r.URL.Query().Get("service"))
	if !ok {
		return forge.Invalid("Unsupported git service: only smart HTTP (git-upload-pack, git-receive-pack) is served")
	}
	if svc == gitsvc.ReceivePack {
		c.action = actRepoWrite
		if err := forge.Authorize(c.p, c.action, nil); err != nil {
			return err
		}
	}
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	return s.logStream(s.Git.InfoRefs(w, r, s.repoDir(repo), svc, nil))
}

func (s *Server) gitRPC(svc gitsvc.Service) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		repo, err := c.repo(r.Context(), r)
		if err != nil {
			return err
		}
		var env []string
		if svc == gitsvc.ReceivePack {
			hookEnv, end := s.Pushes.BeginPush(&gitsvc.Push{RepoID: repo.ID, Repo: repo.Name, Principal: c.p, Transport: "http"})
			defer end()
			env = hookEnv
		}
		return s.logStream(s.Git.ServiceRPC(w, r, s.repoDir(repo), svc, env))
	}
}

// logStream logs failures that happen after a git response started (they
// cannot change the status any more) and passes other errors on.
func (s *Server) logStream(err error) error {
	var se *gitsvc.StreamError
	if errors.As(err, &se) {
		s.log.Warn("git transport", "err", se.Err)
		return nil
	}
	return err
}
