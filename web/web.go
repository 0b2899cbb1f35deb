// Package web is kod's web UI: server-rendered pages under /ui/ (Go
// html/template), a little plain JavaScript for live logs, and CSS, all
// embedded in the binary. It signs people in with an API token and keeps
// a server-side session; every page reads its data by handing an
// in-process request to the REST API as the session's principal, so pages
// and actions are authorised by exactly the API's routes and
// forge.Authorize.
package web

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the UI is served.
const Prefix = "/ui/"

// Tokens is what the UI needs of the token store: sign-in looks a token up
// by hash, every request checks that the session's token still exists,
// and use through the UI counts as use of the token (lastUsedAt).
type Tokens interface {
	TokenByHash(ctx context.Context, hash string) (*forge.Token, error)
	GetToken(ctx context.Context, id string) (*forge.Token, error)
	TouchToken(ctx context.Context, id string, at forge.Millis) error
}

// Logs is what the UI needs of the runner: reading a step's log to cut the
// window of lines a page opens with (runner.Runner.StreamLogs).
type Logs interface {
	StreamLogs(ctx context.Context, id string, opts runner.LogOptions, emit func(*runner.LogEvent) error) error
}

// Deps are the collaborators of the UI.
type Deps struct {
	Tokens Tokens
	Logs   Logs
	// API is the REST API handler; the UI hands it requests as the
	// session's principal (forge.ContextWithPrincipal).
	API http.Handler
	// PublicURL is the server's external base URL (KOD_PUBLIC_URL), "" if
	// unknown: it gives clone URLs, and https there makes cookies Secure.
	PublicURL string
	// SSHAddr is "host:port" of the SSH server for clone URLs; "" when
	// SSH is off.
	SSHAddr string
	Log     *slog.Logger
	// SessionIdle ends a session unused this long (0: 12 h); SessionMax
	// ends any session this long after sign-in (0: 7 days).
	SessionIdle, SessionMax time.Duration
}

// Server serves the UI. It implements http.Handler for paths under
// Prefix; Wrap puts it in front of the API.
type Server struct {
	Deps
	mux      *http.ServeMux
	pages    map[string]*template.Template
	sessions *sessions
	now      func() time.Time
	log      *slog.Logger
}

// New returns the UI server.
func New(d Deps) (*Server, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.SessionIdle <= 0 {
		d.SessionIdle = 12 * time.Hour
	}
	if d.SessionMax <= 0 {
		d.SessionMax = 7 * 24 * time.Hour
	}
	s := &Server{Deps: d, mux: http.NewServeMux(), now: time.Now, log: d.Log.With("component", "web")}
	s.sessions = newSessions(s.now, d.SessionIdle, d.SessionMax)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticFiles(http.FileServerFS(static))))
	s.mux.HandleFunc("GET /ui/signin", s.signInPage)
	s.mux.HandleFunc("POST /ui/signin", s.signIn)
	s.mux.Handle("POST /ui/signout", s.action(s.signOut))
	s.mux.Handle("GET /ui/{$}", s.page(s.reposPage))
	s.mux.Handle("GET /ui/runs", s.page(s.runsPage))
	s.mux.Handle("GET /ui/repos/{name}", s.page(s.repoPage))
	s.mux.Handle("POST /ui/repos/{name}/trigger", s.action(s.trigger))
	s.mux.Handle("POST /ui/repos/{name}/webhooks/{hook}/deliveries/{delivery}/retry", s.action(s.retryDelivery))
	s.mux.Handle("GET /ui/repos/{name}/runs/{id}", s.page(s.runPage))
	s.mux.Handle("GET /ui/repos/{name}/runs/{id}/run.json", s.page(s.runJSON))
	s.mux.Handle("GET /ui/repos/{name}/runs/{id}/events", s.page(s.runEvents))
	s.mux.Handle("GET /ui/repos/{name}/runs/{id}/log", s.page(s.rawLog))
	s.mux.Handle("GET /ui/repos/{name}/runs/{id}/steps/{step}/lines", s.page(s.stepLines))
	s.mux.Handle("POST /ui/repos/{name}/runs/{id}/cancel", s.action(s.cancel))
	s.mux.Handle("POST /ui/repos/{name}/runs/{id}/rerun", s.action(s.rerun))
	s.mux.Handle("/ui/", s.page(func(w http.ResponseWriter, r *http.Request, _ *session) error {
		return errNotFound
	}))
}

// ServeHTTP serves a path under Prefix with the UI's security headers.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// Wrap returns the handler of the whole HTTP port: /ui/... to the UI, a
// browser's GET / (Accept: text/html) redirected to /ui/, everything else
// to api unchanged (the REST API keeps its paths and JSON).
func (s *Server) Wrap(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, Prefix):
			s.ServeHTTP(w, r)
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r):
			http.Redirect(w, r, Prefix, http.StatusFound)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// acceptsHTML reports whether the request's Accept header names text/html
// (browsers do; API clients and curl do not).
func acceptsHTML(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
			return true
		}
	}
	return false
}

// staticFiles marks embedded assets cacheable for a short while: they
// change only with the binary.
func staticFiles(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// errNotFound is answered with the UI's 404 page.
var errNotFound = errors.New("not found")
