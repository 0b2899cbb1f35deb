package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/runner"
)

// fakeTokens is a token store of fixed tokens.
type fakeTokens map[string]*forge.Token // by id

func (f fakeTokens) TokenByHash(_ context.Context, hash string) (*forge.Token, error) {
	for _, t := range f {
		if t.Hash == hash {
			return t, nil
		}
	}
	return nil, forge.NotFound("Token not found")
}

func (f fakeTokens) TouchToken(_ context.Context, id string, at forge.Millis) error {
	if t, ok := f[id]; ok {
		t.LastUsedAt = at
	}
	return nil
}

func (f fakeTokens) GetToken(_ context.Context, id string) (*forge.Token, error) {
	if t, ok := f[id]; ok {
		return t, nil
	}
	return nil, forge.NotFound("Token not found")
}

// fakeLogs serves one step's output (step 0 of any run) in chunks.
type fakeLogs struct {
	chunks  [][]byte
	dropped map[int]int64 // before chunk i, this many bytes were dropped
	ended   bool
}

func (f *fakeLogs) StreamLogs(ctx context.Context, id string, opts runner.LogOptions, emit func(*runner.LogEvent) error) error {
	if opts.From == nil || len(opts.From.At) != 1 || opts.From.At[0].Step != 0 {
		return nil
	}
	var off int64
	from := opts.From.At[0].Offset
	for i, c := range f.chunks {
		if n := f.dropped[i]; n > 0 {
			if off+n > from {
				skip := max(0, from-off)
				if err := emit(&runner.LogEvent{Kind: runner.LogDropped, Dropped: n - skip, Offset: off + n}); err != nil {
					return err
				}
			}
			off += n
		}
		if end := off + int64(len(c)); end > from {
			data := c[max(0, from-off):]
			if err := emit(&runner.LogEvent{Kind: runner.LogOutput, Data: data, Offset: end}); err != nil {
				return err
			}
		}
		off += int64(len(c))
	}
	if f.ended {
		return emit(&runner.LogEvent{Kind: runner.LogStepEnded, Offset: off})
	}
	return nil
}

// fakeAPI answers GET paths with fixed JSON, or a status; it records the
// principal each request carried.
type fakeAPI struct {
	answers map[string]any // "GET /path" -> value, or int status
	seen    []*forge.Principal
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.seen = append(f.seen, forge.PrincipalFromContext(r.Context()))
	a, ok := f.answers[r.Method+" "+r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"Not found"}`)
		return
	}
	if status, ok := a.(int); ok {
		w.WriteHeader(status)
		io.WriteString(w, `{"error":"Access denied"}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a)
}

const testSecret = "kod_testTokenSecret0123456789abcdefg"

func newTestUI(t *testing.T, api http.Handler, logs Logs) (*Server, *forge.Token) {
	t.Helper()
	tok := &forge.Token{ID: "tok1", Name: "dev", Hash: forge.HashToken(testSecret), Permissions: []forge.Permission{forge.PermAdmin}}
	s, err := New(Deps{Tokens: fakeTokens{tok.ID: tok}, Logs: logs, API: api})
	if err != nil {
		t.Fatal(err)
	}
	return s, tok
}

// get serves GET path as the signed-in session.
func get(t *testing.T, s *Server, sess *session, path string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	if sess != nil {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess.id})
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestRepoPageShowsWhatTheAPIAllows(t *testing.T) {
	def := "main"
	api := &fakeAPI{answers: map[string]any{
		"GET /repos/app":                        map[string]any{"name": "app", "branches": []string{"main", "dev"}, "defaultBranch": def, "protectedBranches": []string{"main"}, "collaborators": []string{"alice"}},
		"GET /repos/app/workflows":              []forge.Run{{ID: "r1", RepoName: "app", Branch: "main", Status: forge.RunFailed, Trigger: forge.TriggerPush, CreatedAt: 1}},
		"GET /repos/app/webhooks":               []map[string]any{{"id": "h1", "url": "https://ci.example/hook", "events": []string{"push"}}},
		"GET /repos/app/webhooks/h1/deliveries": []map[string]any{{"id": "d1", "webhookId": "h1", "event": "push", "status": "failed", "attempts": 4, "maxAttempts": 4, "responseStatus": 500}},
		"GET /repos/app/secrets":                []map[string]any{{"name": "DEPLOY_KEY", "updatedAt": 1}},
	}}
	s, tok := newTestUI(t, api, &fakeLogs{})
	sess := s.sessions.create(tok.ID)
	rec := get(t, s, sess, "/ui/repos/app")
	body := rec.Body.String()
	if rec.Code != http.StatusOK {
		t.Fatalf("repo page: %d\n%s", rec.Code, body)
	}
	for _, want := range []string{"https://ci.example/hook", "/ui/repos/app/webhooks/h1/deliveries/d1/retry", "DEPLOY_KEY", "alice", `value="` + sess.csrf + `"`, "/ui/repos/app/runs/r1", "protected"} {
		if !strings.Contains(body, want) {
			t.Errorf("the repo page lacks %q", want)
		}
	}
	if strings.Contains(body, testSecret) {
		t.Error("the page holds the token secret")
	}
	for _, p := range api.seen {
		if p == nil || p.TokenID != tok.ID {
			t.Fatalf("an API call went without the session's principal: %+v", p)
		}
	}

	// A token without webhook or secret reading gets 403 there: no section.
	api.answers["GET /repos/app/webhooks"] = http.StatusForbidden
	api.answers["GET /repos/app/secrets"] = http.StatusForbidden
	body = get(t, s, sess, "/ui/repos/app").Body.String()
	if strings.Contains(body, "Webhooks") || strings.Contains(body, "DEPLOY_KEY") {
		t.Error("sections the API refuses are shown")
	}
	// A repository the API refuses is the API's answer.
	api.answers["GET /repos/other"] = http.StatusForbidden
	if rec := get(t, s, sess, "/ui/repos/other"); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "Access denied") {
		t.Errorf("a refused repository: %d", rec.Code)
	}
}

func TestPagesNeedALiveSessionAndToken(t *testing.T) {
	s, tok := newTestUI(t, &fakeAPI{answers: map[string]any{"GET /repos": []any{}}}, &fakeLogs{})
	if rec := get(t, s, nil, "/ui/runs?status=failed"); rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/ui/signin?next="+url.QueryEscape("/ui/runs?status=failed") {
		t.Errorf("no session: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	sess := s.sessions.create(tok.ID)
	if rec := get(t, s, sess, "/ui/"); rec.Code != http.StatusOK {
		t.Fatalf("signed in: %d", rec.Code)
	}
	if tok.LastUsedAt == 0 {
		t.Error("using the UI did not record the token's use")
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := get(t, s, sess, "/ui/").Header().Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// An expired token ends the session.
	tok.ExpiresAt = time.Now().Add(-time.Minute).UnixMilli()
	if rec := get(t, s, sess, "/ui/"); rec.Code != http.StatusSeeOther {
		t.Errorf("expired token: %d", rec.Code)
	}
	select {
	case <-sess.ended:
	default:
		t.Error("the session of an expired token did not end")
	}
	if s.sessions.get(sess.id) != nil {
		t.Error("the session is still in the table")
	}
}

func TestSessionsExpire(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := newSessions(func() time.Time { return now }, time.Hour, 3*time.Hour)
	s := tab.create("t")
	now = now.Add(59 * time.Minute)
	if tab.get(s.id) == nil {
		t.Fatal("an active session ended")
	}
	now = now.Add(61 * time.Minute)
	if tab.get(s.id) != nil {
		t.Error("an idle session lives on")
	}
	s = tab.create("t")
	for i := 0; i < 4; i++ {
		now = now.Add(50 * time.Minute)
		tab.get(s.id)
	}
	if tab.get(s.id) != nil {
		t.Error("a session outlived its maximum age")
	}
	if s.id == tab.create("t").id {
		t.Error("session ids repeat")
	}
}

func TestSafeNextAndCrossSite(t *testing.T) {
	for next, want := range map[string]string{
		"/ui/runs?x=1": "/ui/runs?x=1", "": "/ui/", "//evil.example/": "/ui/", "https://evil.example/ui/": "/ui/", "/ui/\\evil": "/ui/", "/api": "/ui/",
	} {
		if got := safeNext(next); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", next, got, want)
		}
	}
	for _, c := range []struct {
		h    map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://kod.test"}, false},
		{map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{map[string]string{"Origin": "http://evil.example"}, true},
		{map[string]string{"Origin": "null"}, true},
	} {
		r := httptest.NewRequest(http.MethodPost, "http://kod.test/ui/signout", nil)
		for k, v := range c.h {
			r.Header.Set(k, v)
		}
		if got := crossSite(r); got != c.want {
			t.Errorf("crossSite(%v) = %v", c.h, got)
		}
	}
}

func TestActionsNeedTheCSRFToken(t *testing.T) {
	api := &fakeAPI{answers: map[string]any{"POST /repos/app/workflows/r1/cancel": map[string]string{"id": "r1"}}}
	s, tok := newTestUI(t, api, &fakeLogs{})
	sess := s.sessions.create(tok.ID)
	post := func(form url.Values) int {
		req := httptest.NewRequest(http.MethodPost, "/ui/repos/app/runs/r1/cancel", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: sess.id})
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec.Code
	}
	if got := post(url.Values{}); got != http.StatusForbidden {
		t.Errorf("without the token: %d", got)
	}
	if got := post(url.Values{"csrf": {"forged"}}); got != http.StatusForbidden {
		t.Errorf("with a wrong token: %d", got)
	}
	if len(api.seen) != 0 {
		t.Fatal("a refused action reached the API")
	}
	if got := post(url.Values{"csrf": {sess.csrf}}); got != http.StatusSeeOther {
		t.Errorf("with the token: %d", got)
	}
}

func TestWrapRoutesBrowsersToTheUI(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	s, _ := newTestUI(t, api, &fakeLogs{})
	h := s.Wrap(api)
	for _, c := range []struct {
		path, accept string
		want         int
	}{
		{"/", "text/html,application/xhtml+xml;q=0.9", http.StatusFound},
		{"/", "application/json", http.StatusTeapot},
		{"/", "", http.StatusTeapot},
		{"/repos", "text/html", http.StatusTeapot},
		{"/ui", "text/html", http.StatusMovedPermanently},
		{"/ui/static/app.css", "", http.StatusOK},
	} {
		req := httptest.NewRequest(http.MethodGet, c.path, nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.want {
			t.Errorf("GET %s (Accept %q): %d, want %d", c.path, c.accept, rec.Code, c.want)
		}
	}
}

func TestRunsPageFiltersAndPages(t *testing.T) {
	var app, lib []forge.Run
	for i := 0; i < 30; i++ {
		st, br := forge.RunCompleted, "main"
		if i%3 == 0 {
			st, br = forge.RunFailed, "dev"
		}
		app = append(app, forge.Run{ID: fmt.Sprintf("app%02d", i), RepoName: "app", Branch: br, Status: st, Trigger: forge.TriggerPush, CreatedAt: int64(1000 - 2*i)})
		lib = append(lib, forge.Run{ID: fmt.Sprintf("lib%02d", i), RepoName: "lib", Branch: "main", Status: forge.RunCompleted, Trigger: forge.TriggerManual, CreatedAt: int64(999 - 2*i)})
	}
	api := &fakeAPI{answers: map[string]any{
		"GET /repos":                  []map[string]string{{"name": "app"}, {"name": "lib"}, {"name": "hidden"}},
		"GET /repos/app/workflows":    app,
		"GET /repos/lib/workflows":    lib,
		"GET /repos/hidden/workflows": http.StatusForbidden,
	}}
	s, tok := newTestUI(t, api, &fakeLogs{})
	sess := s.sessions.create(tok.ID)
	ids := func(body string) []string {
		return regexp.MustCompile(`/runs/((?:app|lib)\d\d)"`).FindAllString(body, -1)
	}

	body := get(t, s, sess, "/ui/runs").Body.String()
	if got := ids(body); len(got) != 25 || !strings.Contains(got[0], "app00") || !strings.Contains(got[1], "lib00") {
		t.Errorf("page 1: %d runs, starting %v", len(got), got[:min(2, len(got))])
	}
	if !strings.Contains(body, `href="/ui/runs?page=2"`) || !strings.Contains(body, "60 runs") {
		t.Error("page 1 has no link to page 2 or the wrong count")
	}
	body = get(t, s, sess, "/ui/runs?page=3").Body.String()
	if got := ids(body); len(got) != 10 || strings.Contains(body, `rel="next"`) {
		t.Errorf("page 3: %d runs", len(got))
	}
	body = get(t, s, sess, "/ui/runs?repo=app&status=failed&branch=dev&trigger=push").Body.String()
	if got := ids(body); len(got) != 10 || strings.Contains(body, "lib0") {
		t.Errorf("filtered: %d runs", len(got))
	}
	if body := get(t, s, sess, "/ui/runs?trigger=schedule").Body.String(); len(ids(body)) != 0 || !strings.Contains(body, "No runs.") {
		t.Error("a filter matching nothing shows runs")
	}
}
