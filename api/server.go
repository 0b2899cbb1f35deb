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
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/artifact"
	"github.com/kod-forge/kod/runner/cache"
)

// Deps are the collaborators of the API server.
type Deps struct {
	Store    forge.Store
	Git      *gitsvc.Git
	Repos    *repos.Service // the repository lifecycle: create, import, rename, delete
	Pushes   *gitsvc.Pushes // registers pushes over smart HTTP with the hook server
	Runner   *runner.Runner
	ReposDir string // bare repositories live at <ReposDir>/<name>.git
	LogsDir  string // step logs, see runner.StepLogPath
	Log      *slog.Logger
	Secrets  *forge.SecretBox // seals repository secrets; nil without KOD_ENCRYPTION_KEY
	Webhooks DeliveryRetrier  // sends a webhook delivery again at once
	// HostKeyPath is the SSH host key, included in backups ("" = none).
	HostKeyPath string
	// HostPolicy is what webhook URLs are checked against at creation
	// (KOD_WEBHOOK_ALLOWED_HOSTS); nil means netpolicy.Default.
	HostPolicy *netpolicy.Policy
	// Metrics, if set, counts every request by route template and is
	// served at GET /metrics (see metricsRoute) to admin tokens and to
	// the bearer MetricsToken (KOD_METRICS_TOKEN; "" = admin tokens only).
	Metrics      MetricsExporter
	MetricsToken string
	// Artifacts reads the stored artifact files of runs; nil = downloads
	// answer 404.
	Artifacts *artifact.Store
	// Caches deletes caches with their backend layers; nil = only the
	// records are deleted.
	Caches *cache.Manager
	// TokenRecheck is how often a long log stream checks that its token
	// still exists and has not expired; 0 means 30 s.
	TokenRecheck time.Duration
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

	streamsStopped  chan struct{} // closed by StopStreams
	stopStreamsOnce sync.Once
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
	if d.HostPolicy == nil {
		d.HostPolicy, _ = netpolicy.Parse(netpolicy.Default)
	}
	s := &Server{Deps: d, router: mux.NewRouter(), log: d.Log.With("component", "api"), touched: map[string]time.Time{}, now: time.Now, streamsStopped: make(chan struct{})}
	if s.Metrics != nil {
		s.router.Use(s.Metrics.HTTP) // outermost: it sees the status of recovered panics
	}
	s.router.Use(s.recoverPanics)
	s.router.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
	s.metricsRoute()
	s.gitRoutes()
	s.statusRoutes()
	s.repoRoutes()
	s.collaboratorRoutes()
	s.protectionRoutes()
	s.tokenRoutes()
	s.workflowRoutes()
	s.pipelineRoutes()
	s.keyRoutes()
	s.secretRoutes()
	s.webhookRoutes()
	s.backupRoutes()
	notFound := s.authenticated(func(w http.ResponseWriter, r *http.Request, _ *forge.Principal) {
		writeJSON(w, http.StatusNotFound, errorBody{"Not found"})
	})
	s.router.NotFoundHandler = s.recoverPanics(notFound)
	s.router.MethodNotAllowedHandler = s.recoverPanics(s.authenticated(s.methodNotAllowed))
	if s.Metrics != nil {
		s.router.NotFoundHandler = s.Metrics.HTTP(s.router.NotFoundHandler)
		s.router.MethodNotAllowedHandler = s.Metrics.HTTP(s.router.MethodNotAllowedHandler)
	}
	return s
}

// methodNotAllowed answers a known path asked with another method: 405
// {"error":"Method not allowed"} with Allow listing the methods the path
// has. Like unknown routes, it is answered only to authenticated callers.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, _ *forge.Principal) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, errorBody{"Method not allowed"})
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
	loaded *forge.Repo // the {name} repository, loaded and authorised by handle
}

// handle registers method+path with the action it requires. Every request
// goes through forge.Authorize in Kod's order before fn sees it:
// authentication (401), the permission (403 "Permission denied", before
// any lookup), and for paths with a {name} variable the repository (404
// "Repository not found"), access to it (403 "Access denied") and
// ownership for owner-only actions, so no handler can forget them.
func (s *Server) handle(method, path string, action forge.Action, fn handlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: path, Action: action})
	repoScoped := strings.Contains(path, "{name}") || strings.Contains(path, "{name:")
	h := s.authenticated(func(w http.ResponseWriter, r *http.Request, p *forge.Principal) {
		c := &call{s: s, p: p, action: action}
		err := forge.Authorize(p, action, nil)
		if err == nil && repoScoped {
			c.loaded, err = c.load(r)
		}
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

// load reads the repository named by the {name} route variable and
// authorises c's action on it.
func (c *call) load(r *http.Request) (*forge.Repo, error) {
	repo, err := c.s.Store.GetRepo(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		return nil, err
	}
	if err := forge.Authorize(c.p, c.action, repo); err != nil {
		return nil, err
	}
	return repo, nil
}

// repo returns the {name} repository, authorised for c.action (again, when
// a handler raised the action, as git's info/refs does for pushes).
func (c *call) repo(_ context.Context, r *http.Request) (*forge.Repo, error) {
	if c.loaded == nil {
		return c.load(r)
	}
	if err := forge.Authorize(c.p, c.action, c.loaded); err != nil {
		return nil, err
	}
	return c.loaded, nil
}
