package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

const admin = "kod_apiTestAdmin0000000000000000000"

type env struct {
	t        *testing.T
	srv      *httptest.Server
	store    *boltstore.Store
	reposDir string
	api      *api.Server
}

// newEnv serves the API in-process over a bbolt file in a temp dir, with
// the runner on the fake sandbox backend.
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with a chance to change the dependencies (wrap the
// store, set the host policy) before the server is built.
func newEnvWith(t *testing.T, change func(*api.Deps, *repos.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "data", "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if ok, err := api.Bootstrap(context.Background(), store, admin); !ok || err != nil {
		t.Fatalf("bootstrap: %v %v", ok, err)
	}
	log := slog.New(slog.DiscardHandler)
	git := &gitsvc.Git{}
	reposDir := filepath.Join(dir, "repos")
	r := runner.New(runner.Config{Instance: "t", DefaultImage: "img", LogsDir: filepath.Join(dir, "logs")}, store, sandboxtest.New(nil), nil, log)
	pushes := gitsvc.NewPushes(filepath.Join(dir, "hook.sock"))
	rc := repos.Config{ReposDir: reposDir, LogsDir: filepath.Join(dir, "logs"), HookBinary: "/bin/false", Store: store, Git: git, Runs: r, Log: log}
	deps := api.Deps{Store: store, Git: git, Pushes: pushes, Runner: r, ReposDir: reposDir, LogsDir: filepath.Join(dir, "logs"), Log: log}
	if change != nil {
		change(&deps, &rc)
	}
	deps.Repos = repos.New(rc)
	s := api.New(deps)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, store: store, reposDir: reposDir, api: s}
}

func (e *env) req(method, path, auth, body string) (int, string, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(data), res.Header
}

func bearer(tok string) string { return "Bearer " + tok }

func TestHealthIsOpenEverythingElseNeedsAToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if code, body, _ := e.req("GET", "/health", "", ""); code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Errorf("health: %d %s", code, body)
	}
	for _, auth := range []string{"", "Bearer kod_wrong", "Basic " + base64.StdEncoding.EncodeToString([]byte("git:kod_wrong")), "Bearer "} {
		for _, path := range []string{"/repos", "/nope", "/repos/x/workflows"} {
			code, body, h := e.req("GET", path, auth, "")
			if code != 401 || strings.TrimSpace(body) != `{"error":"Unauthorized"}` || h.Get("WWW-Authenticate") != `Basic realm="Kod"` {
				t.Errorf("GET %s with %q: %d %s %v", path, auth, code, body, h)
			}
		}
	}
	// Basic auth with any username and the token as password works.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:"+admin))
	if code, body, _ := e.req("GET", "/repos", basic, ""); code != 200 || strings.TrimSpace(body) != "[]" {
		t.Errorf("basic: %d %s", code, body)
	}
	if code, body, _ := e.req("GET", "/nope", bearer(admin), ""); code != 404 || strings.TrimSpace(body) != `{"error":"Not found"}` {
		t.Errorf("unknown route: %d %s", code, body)
	}
}

func TestCreateRepoBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("a", 101)
	cases := []struct {
		name, body string
		code       int
		msg        string
	}{
		{"empty body", ``, 400, "Name is required"},
		{"empty name", `{"name":""}`, 400, "Name is required"},
		{"slash", `{"name":"a/b"}`, 400, "Name must be alphanumeric with hyphens and underscores only"},
		{"dots", `{"name":".."}`, 400, "Name must be alphanumeric with hyphens and underscores only"},
		{"leading dash", `{"name":"-x"}`, 400, "Name must be alphanumeric with hyphens and underscores only"},
		{"space", `{"name":"a b"}`, 400, "Name must be alphanumeric with hyphens and underscores only"},
		{"too long", `{"name":"` + long + `"}`, 400, "Name must be at most 100 characters"},
		{"bad json", `{"name":`, 400, "Invalid JSON body: unexpected end of input"},
		{"not an object", `["x"]`, 400, "Invalid JSON body: expected a JSON object"},
		{"wrong type", `{"name":5}`, 400, `Invalid JSON body: field "name" must be a string`},
		{"unknown field", `{"name":"ok","owner":"me"}`, 400, `Unknown field "owner"`},
		{"trailing data", `{"name":"ok"} {"name":"again"}`, 400, "Invalid JSON body: unexpected data after the JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body, _ := e.req("POST", "/repos", bearer(admin), c.body)
			var got struct{ Error string }
			_ = json.Unmarshal([]byte(body), &got)
			if code != c.code || got.Error != c.msg {
				t.Errorf("got %d %s, want %d %q", code, body, c.code, c.msg)
			}
		})
	}
	// Nothing was created by any of them.
	if repos, _ := e.store.ListRepos(context.Background()); len(repos) != 0 {
		t.Errorf("bad requests created %d repositories", len(repos))
	}
	if entries, _ := os.ReadDir(e.reposDir); len(entries) != 0 {
		t.Errorf("bad requests left %d entries in the repos dir", len(entries))
	}
}

func TestRepoLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	code, body, _ := e.req("POST", "/repos", bearer(admin), `{"name":"my-project"}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	var created map[string]any
	json.Unmarshal([]byte(body), &created)
	wantPath := filepath.Join(e.reposDir, "my-project.git")
	if created["name"] != "my-project" || created["path"] != wantPath || created["ownerTokenId"] == "" {
		t.Errorf("created: %v", created)
	}
	if pb, ok := created["protectedBranches"].([]any); !ok || len(pb) != 0 {
		t.Errorf("protectedBranches: %v", created["protectedBranches"])
	}
	for _, hook := range gitsvc.HookNames {
		if st, err := os.Stat(filepath.Join(wantPath, "hooks", hook)); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("hook %s: %v", hook, err)
		}
	}
	if code, body, _ := e.req("POST", "/repos", bearer(admin), `{"name":"my-project"}`); code != 409 || !strings.Contains(body, "Repository already exists") {
		t.Errorf("duplicate: %d %s", code, body)
	}
	code, body, _ = e.req("GET", "/repos/my-project", bearer(admin), "")
	if code != 200 || !strings.Contains(body, `"branches":[]`) || !strings.Contains(body, `"defaultBranch":null`) || !strings.Contains(body, `"collaborators":[]`) {
		t.Errorf("get: %d %s", code, body)
	}
	if code, body, _ := e.req("GET", "/repos/missing", bearer(admin), ""); code != 404 || !strings.Contains(body, "Repository not found") {
		t.Errorf("missing: %d %s", code, body)
	}
	if code, body, _ := e.req("GET", "/repos/my-project/workflows/nope", bearer(admin), ""); code != 404 || !strings.Contains(body, "Workflow run not found") {
		t.Errorf("missing run: %d %s", code, body)
	}
	if code, _, _ := e.req("DELETE", "/repos/my-project", bearer(admin), ""); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if _, err := os.Stat(wantPath); !os.IsNotExist(err) {
		t.Errorf("repository directory still there: %v", err)
	}
	if code, _, _ := e.req("DELETE", "/repos/my-project", bearer(admin), ""); code != 404 {
		t.Errorf("second delete: %d", code)
	}
}

func TestTriggerBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.req("POST", "/repos", bearer(admin), `{"name":"r"}`)
	cases := []struct{ body, msg string }{
		{`{"branch":"bad..name"}`, "Invalid branch name"},
		{`{"branch":"-x"}`, "Invalid branch name"},
		{`{"branch":"main","commit":"xyz"}`, "Invalid commit"},
		{`{"branch":"main","commit":"abcdef1234"}`, "Invalid commit"},
		{`{"branch":"main"}`, "Branch 'main' does not exist"},
		{`{"files":["../../etc/passwd"]}`, "Workflow files must be inside .kod/workflows/"},
		{`{"files":[".kod/workflows/../x.toml"]}`, "Workflow files must be inside .kod/workflows/"},
		{`{"files":["/abs.toml"]}`, "Workflow files must be inside .kod/workflows/"},
		{`{"branch":"main","extra":1}`, `Unknown field "extra"`},
	}
	for _, c := range cases {
		code, body, _ := e.req("POST", "/repos/r/workflows", bearer(admin), c.body)
		var got struct{ Error string }
		_ = json.Unmarshal([]byte(body), &got)
		if code != 400 || got.Error != c.msg {
			t.Errorf("%s: %d %s, want 400 %q", c.body, code, body, c.msg)
		}
	}
	if runs, _ := e.store.ListRuns(context.Background(), "r", 0); len(runs) != 0 {
		t.Errorf("bad triggers queued %d runs", len(runs))
	}
}

func TestPermissionDeniedBeforeNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := forge.NewTokenSecret()
	if err := e.store.CreateToken(context.Background(), &forge.Token{ID: forge.NewID(), Name: "ro", Hash: forge.HashToken(tok), Permissions: []forge.Permission{forge.PermRepoRead}}); err != nil {
		t.Fatal(err)
	}
	// Missing permission wins over a missing repository.
	if code, body, _ := e.req("DELETE", "/repos/does-not-exist", bearer(tok), ""); code != 403 || !strings.Contains(body, "Permission denied") {
		t.Errorf("delete without repo:delete: %d %s", code, body)
	}
	if code, body, _ := e.req("POST", "/repos", bearer(tok), `{"name":"x"}`); code != 403 || !strings.Contains(body, "Permission denied") {
		t.Errorf("create without repo:write: %d %s", code, body)
	}
	if code, _, _ := e.req("GET", "/repos/does-not-exist", bearer(tok), ""); code != 404 {
		t.Errorf("read of a missing repo: %d", code)
	}
}
