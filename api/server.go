// Package api is kod's REST API over gorilla/mux: routing, token
// authentication, JSON in and out, mapping domain errors to Kod's status
// codes and `{"error": "..."}` bodies, and the git smart HTTP endpoints.
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/runner"
)

// Deps are the collaborators of the API server.
type Deps struct {
	Store      forge.Store
	Git        *gitsvc.Git
	Hooks      *gitsvc.HookServer
	Runner     *runner.Runner
	ReposDir   string // bare repositories live at <ReposDir>/<name>.git
	LogsDir    string // step logs, see runner.StepLogPath
	HookBinary string // absolute path of the kod binary the git hooks run
	Log        *slog.Logger

	// HostKeyPath is the SSH host key, included in backups ("" = none).
	HostKeyPath string
}

// Server is the HTTP API. It implements http.Handler.
type Server struct {
	Deps
	router *mux.Router
	routes []Route
	log    *slog.Logger

	touchMu sync.Mutex
	touched map[string]time.Time // token id -> last lastUsedAt write
	now     func() time.Time
}

// Route is one registered API route with the action it requires; tests
// walk this list to prove every route refuses principals without the
// permission.
type Route struct {
	Method string
	Path   string // gorilla/mux template
	Action forge.Action
}

// New returns the API server with every route registered.
func New(d Deps) *Server {
	s := &Server{Deps: d, router: mux.NewRouter(), log: d.Log.With("component", "api"), touched: map[string]time.Time{}, now: time.Now}
	s.router.Use(s.recoverPanics)
	s.router.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
	s.gitRoutes()
	s.repoRoutes()
	s.tokenRoutes()
	s.workflowRoutes()
	s.backupRoutes()
	notFound := s.authenticated(func(w http.ResponseWriter, r *http.Request, _ *forge.Principal) {
		writeJSON(w, http.StatusNotFound, errorBody{"Not found"})
	})
	s.router.NotFoundHandler = s.recoverPanics(notFound)
	s.router.MethodNotAllowedHandler = s.recoverPanics(notFound)
	return s
}

// Routes returns every registered route except /health.
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// handlerFunc is an API handler: it gets the authenticated principal and
// returns an error that the adapter maps to a status and JSON body.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// call is the per-request context of a handler.
type call struct {
	s      *Server
	p      *forge.Principal
	action forge.Action
}

// handle registers method+path: authentication, then the permission check
// of action (403 before any 404), then fn.
func (s *Server) handle(method, path string, action forge.Action, fn handlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Action: action})
	h := s.authenticated(func(w http.ResponseWriter, r *http.Request, p *forge.Principal) {
		c := &call{s: s, p: p, action: action}
		err := forge.Authorize(p, action, nil)
		if err == nil {
			err = fn(w, r, c)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
	s.router.Handle(path, h).Methods(method)
}

// writeError answers with the mapped status; internal errors are logged
// with a request id that is also returned, never with their text.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg, user := statusOf(err)
	if !user {
		id := requestID()
		s.log.Error("request failed", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("X-Request-Id", id)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Kod"`)
	}
	writeJSON(w, status, errorBody{msg})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				id := requestID()
				s.log.Error("panic", "id", id, "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				w.Header().Set("X-Request-Id", id)
				writeJSON(w, http.StatusInternalServerError, errorBody{"Internal server error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func requestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// repo loads the repository named by the {name} route variable and
// authorises c's action on it.
func (c *call) repo(ctx context.Context, r *http.Request) (*forge.Repo, error) {
	repo, err := c.s.Store.GetRepo(ctx, mux.Vars(r)["name"])
	if err != nil {
		return nil, err
	}
	if err := forge.Authorize(c.p, c.action, repo); err != nil {
		return nil, err
	}
	return repo, nil
}
