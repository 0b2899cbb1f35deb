package web

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
)

// view is what every template gets: the layout's fields, and Data for the
// page itself.
type view struct {
	Title   string
	Status  forge.RunStatus // the page's run state: favicon, title prefix
	User    string          // who is signed in ("" on the sign-in page)
	CSRF    string
	Error   string
	Notice  string
	Next    string
	Nav     string // "repos", "runs": the current section
	Data    any
	NowUnix int64 // ms, for relative times
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ago":      ago,
		"abstime":  absTime,
		"iso":      isoTime,
		"dur":      duration,
		"icon":     statusIcon,
		"short":    shortCommit,
		"favicon":  favicon,
		"add":      func(a, b int) int { return a + b },
		"stepID":   func(i int) string { return fmt.Sprint(i) },
		"statusOf": stepStatus,
		"runsCtx": func(runs []*forge.Run, now int64) map[string]any {
			return map[string]any{"Runs": runs, "Now": now}
		},
		"int64diff": func(a, b forge.Millis) int64 { return int64(a - b) },
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes page name with v, buffered so a template error becomes a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	if v.NowUnix == 0 {
		v.NowUnix = s.now().UnixMilli()
	}
	if tok := tokenOf(r); tok != nil && v.User == "" {
		v.User = tok.Name
		if tok.Username != "" {
			v.User = tok.Username
		}
	}
	var b bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&b, "layout.html", v); err != nil {
		s.log.Error("rendering a page", "page", name, "err", err)
		http.Error(w, "Internal server error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// fail answers a page whose handler failed: the API's refusal (403, 404,
// 400...) with its message, anything else as a 500 logged here.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, sess *session, err error) {
	status, msg := http.StatusInternalServerError, "Something went wrong; the server log has the details."
	var ae *apiError
	switch {
	case errors.Is(err, errNotFound):
		status, msg = http.StatusNotFound, "Page not found"
	case errors.As(err, &ae) && ae.Status < 500:
		status, msg = ae.Status, ae.Message
	default:
		s.log.Error("page failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	csrf := ""
	if sess != nil {
		csrf = sess.csrf
	}
	s.render(w, r, status, "error", &view{Title: http.StatusText(status), CSRF: csrf, Error: msg})
}

func toTime(ms forge.Millis) time.Time { return time.UnixMilli(int64(ms)).UTC() }

// ago is a relative time ("3 min ago") of ms against now (ms).
func ago(ms forge.Millis, now int64) string {
	if ms == 0 {
		return "—"
	}
	d := time.Duration(now-int64(ms)) * time.Millisecond
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func absTime(ms forge.Millis) string {
	if ms == 0 {
		return ""
	}
	return toTime(ms).Format("2006-01-02 15:04:05 UTC")
}

func isoTime(ms forge.Millis) string {
	if ms == 0 {
		return ""
	}
	return toTime(ms).Format(time.RFC3339)
}

// duration formats ms as "1m 05s", "850 ms".
func duration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case ms <= 0:
		return "—"
	case d < time.Second:
		return fmt.Sprintf("%d ms", ms)
	case d < time.Minute:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh %02dm", int(d.Hours()), int(d.Minutes())%60)
}

// statusIcon is the symbol shown next to a status word: colour is never
// the only signal.
func statusIcon(status string) string {
	switch status {
	case "queued", "pending", "planned":
		return "○"
	case "running":
		return "◔"
	case "completed", "success", "succeeded":
		return "✓"
	case "failed", "failure":
		return "✗"
	case "cancelled":
		return "⊘"
	case "skipped":
		return "↷"
	}
	return "•"
}

func shortCommit(c string) string {
	if len(c) > 10 {
		return c[:10]
	}
	return c
}

// favicon is the icon of a run state.
func favicon(st forge.RunStatus) string {
	switch st {
	case forge.RunQueued, forge.RunRunning, forge.RunCompleted, forge.RunFailed, forge.RunCancelled:
		return "/ui/static/fav-" + string(st) + ".svg"
	}
	return "/ui/static/fav.svg"
}
