package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

// fakeToken is the only token fakeAPI accepts.
const fakeToken = "kod_fakeToken0123456789abcdefghijkl"

// fakeBase is the fixed time of every record of fakeAPI; tests run the CLI
// with its clock at fakeNow.
var (
	fakeBase = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	fakeNow  = fakeBase.Add(90 * time.Minute)
)

func ms(d time.Duration) int64 { return fakeBase.Add(d).UnixMilli() }

// fakeAPI follows the documented contract of the routes whose server side
// is built in other issues (collaborators, protections, import, rename,
// keys, secrets, webhooks, live logs), with fixed data, so the commands can
// be tested before those routes land and their tables compared to goldens.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []string // "METHOD /path body"
	repos  map[string]*client.RepoDetail
	collab map[string][]string
	keys   []client.Key
	secret map[string][]client.Secret
	hooks  []client.Webhook
	runs   map[string]*forge.Run
	logs   map[string]string
	// follow makes ?follow=true stream the log line by line.
	follow bool
}

func newFakeAPI(t *testing.T) *fakeAPI {
	main := "main"
	f := &fakeAPI{
		t: t,
		repos: map[string]*client.RepoDetail{
			"app": {Repo: client.Repo{Name: "app", CreatedAt: ms(-49 * time.Hour), Path: "/srv/kod/repos/app.git", OwnerTokenID: "owner0000001", ProtectedBranches: []string{"main"}},
				Branches: []string{"dev", "main"}, DefaultBranch: &main},
			"docs": {Repo: client.Repo{Name: "docs", CreatedAt: ms(-3 * time.Minute), Path: "/srv/kod/repos/docs.git", OwnerTokenID: "owner0000002", ProtectedBranches: []string{}},
				Branches: []string{}},
		},
		collab: map[string][]string{"app": {"alice", "bob"}},
		keys: []client.Key{{ID: "key000000001", Username: "alice", Name: "laptop", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake alice@laptop",
			KeyType: "ssh-ed25519", Fingerprint: "SHA256:2xqFakeFingerprintOfAliceLaptopKey000000", CreatedAt: ms(-26 * time.Hour), AddedByTokenID: "tok000000002"},
			{ID: "key000000002", Username: "alice", Name: "desktop", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake2 alice@desktop",
				KeyType: "ssh-ed25519", Fingerprint: "SHA256:2xqFakeFingerprintOfAliceDesktopKey00000", CreatedAt: ms(-3 * time.Hour), AddedByTokenID: "tok000000001", AddedByAdmin: true},
			{ID: "key000000003", Username: "alice", Name: "old", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake3 alice@old",
				KeyType: "ssh-ed25519", Fingerprint: "SHA256:2xqFakeFingerprintOfAliceOldKey000000000", CreatedAt: ms(-48 * time.Hour)}},
		secret: map[string][]client.Secret{"app": {{Name: "DEPLOY_TOKEN", RepoName: "app", CreatedAt: ms(-5 * 24 * time.Hour), UpdatedAt: ms(-2 * time.Hour)}}},
		hooks:  []client.Webhook{{ID: "hook00000001", RepoName: "app", URL: "https://ci.example.com/hook", Events: []string{"push", "workflow"}, CreatedAt: ms(-3 * time.Hour)}},
		runs:   map[string]*forge.Run{},
		logs:   map[string]string{},
	}
	f.addRun(&forge.Run{ID: "run000000001", RepoName: "app", Branch: "main", Commit: "0123456789abcdef0123456789abcdef01234567", Trigger: forge.TriggerPush,
		Status: forge.RunCompleted, CreatedAt: ms(-20 * time.Minute), StartedAt: ms(-20 * time.Minute), CompletedAt: ms(-19 * time.Minute), Seq: 1,
		Result: &forge.Result{Success: true, Duration: 32110, Steps: []forge.StepResult{
			{Name: "build", Workflow: ".kod/workflows/ci.toml", Success: true, Output: "built\n", Duration: 12000},
			{Name: "deploy", Workflow: ".kod/workflows/ci.toml", Success: true, Skipped: true},
			{Name: "test", Workflow: ".kod/workflows/ci.toml", Success: true, Output: "ok\n", Duration: 20110},
		}}}, "==> build\nbuilt\n==> deploy (skipped)\n==> test\nok\n")
	f.addRun(&forge.Run{ID: "run000000002", RepoName: "app", Branch: "dev", Commit: "fedcba9876543210fedcba9876543210fedcba98", Trigger: forge.TriggerManual,
		Status: forge.RunFailed, CreatedAt: ms(-5 * time.Minute), StartedAt: ms(-5 * time.Minute), CompletedAt: ms(-4 * time.Minute), Seq: 2,
		Result: &forge.Result{Duration: 1500, Steps: []forge.StepResult{
			{Name: "test", Workflow: ".kod/workflows/ci.toml", Output: "FAIL\n", Error: "step failed with exit code 1", Duration: 1500},
		}}}, "==> test\nFAIL\n")
	f.srv = httptest.NewServer(f.router())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) addRun(r *forge.Run, log string) {
	f.runs[r.ID] = r
	f.logs[r.ID] = log
}

// called reports whether a request line starting with prefix was made.
func (f *fakeAPI) called(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.calls, func(c string) bool { return strings.HasPrefix(c, prefix) })
}

func writeJSONT(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) {
	writeJSONT(w, status, map[string]string{"error": msg})
}

// router serves the documented routes; each handler takes the lock.
func (f *fakeAPI) router() http.Handler {
	r := mux.NewRouter()
	r.UseEncodedPath()
	h := func(method, path string, fn func(w http.ResponseWriter, r *http.Request, body map[string]any)) {
		r.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
			var body map[string]any
			_ = json.NewDecoder(req.Body).Decode(&body)
			f.mu.Lock()
			defer f.mu.Unlock()
			raw, _ := json.Marshal(body)
			f.calls = append(f.calls, fmt.Sprintf("%s %s %s", req.Method, req.URL.RequestURI(), raw))
			if req.Header.Get("Authorization") != "Bearer "+fakeToken {
				w.Header().Set("WWW-Authenticate", `Basic realm="Kod"`)
				fail(w, http.StatusUnauthorized, "Unauthorized")
				return
			}
			fn(w, req, body)
		}).Methods(method)
	}
	r.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) { writeJSONT(w, 200, map[string]string{"status": "ok"}) })
	f.repoRoutes(h)
	f.scopedRoutes(h)
	f.runRoutes(h)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fail(w, 404, "Not found") })
	return r
}

type handleFn func(method, path string, fn func(w http.ResponseWriter, r *http.Request, body map[string]any))

func vars(r *http.Request, k string) string {
	v := mux.Vars(r)[k]
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}

func (f *fakeAPI) repo(w http.ResponseWriter, r *http.Request) *client.RepoDetail {
	repo, ok := f.repos[vars(r, "name")]
	if !ok {
		fail(w, 404, "Repository not found")
		return nil
	}
	return repo
}

func (f *fakeAPI) repoRoutes(h handleFn) {
	h("GET", "/repos", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		var out []client.Repo
		for _, name := range []string{"app", "docs"} {
			if repo, ok := f.repos[name]; ok {
				out = append(out, repo.Repo)
			}
		}
		writeJSONT(w, 200, out)
	})
	h("POST", "/repos", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		name, _ := b["name"].(string)
		if _, ok := f.repos[name]; ok {
			fail(w, 409, "Repository already exists")
			return
		}
		writeJSONT(w, 201, client.Repo{Name: name, CreatedAt: ms(0), OwnerTokenID: "owner0000001", ProtectedBranches: []string{}})
	})
	h("POST", "/repos/import", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		name, _ := b["name"].(string)
		if name == "" {
			name = "project"
		}
		writeJSONT(w, 201, client.Repo{Name: name, CreatedAt: ms(0), ProtectedBranches: []string{}})
	})
	h("GET", "/repos/{name}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			out := *repo
			out.Collaborators = client.Collaborators{}
			for _, c := range f.collab[repo.Name] {
				out.Collaborators = append(out.Collaborators, client.Collaborator{Username: c})
			}
			writeJSONT(w, 200, struct {
				client.Repo
				Collaborators []string `json:"collaborators"`
				Branches      []string `json:"branches"`
				DefaultBranch *string  `json:"defaultBranch"`
			}{out.Repo, f.collab[repo.Name], out.Branches, out.DefaultBranch})
		}
	})
	h("PATCH", "/repos/{name}", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		if repo := f.repo(w, r); repo != nil {
			if branch, ok := b["defaultBranch"].(string); ok {
				if branch != "main" {
					fail(w, 400, fmt.Sprintf("Branch '%s' does not exist", branch))
					return
				}
				writeJSONT(w, 200, repo)
				return
			}
			newName, _ := b["name"].(string)
			if _, taken := f.repos[newName]; taken {
				fail(w, 409, "A repository with that name already exists")
				return
			}
			out := repo.Repo
			out.Name = newName
			writeJSONT(w, 200, out)
		}
	})
	h("DELETE", "/repos/{name}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if f.repo(w, r) != nil {
			w.WriteHeader(204)
		}
	})
	h("GET", "/tokens", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		writeJSONT(w, 200, []client.Token{
			{ID: "owner0000001", Name: "admin", CreatedAt: ms(-72 * time.Hour), LastUsedAt: ms(-10 * time.Second), Permissions: []string{"admin"}},
			{ID: "tok000000002", Name: "ci", CreatedAt: ms(-2 * time.Hour), ExpiresAt: ms(29*24*time.Hour + 90*time.Minute), Permissions: []string{"repo:read", "workflow:trigger"}, Username: "alice"},
		})
	})
	h("POST", "/tokens", func(w http.ResponseWriter, r *http.Request, b map[string]any) {
		exp := ms(30*24*time.Hour + 90*time.Minute)
		writeJSONT(w, 201, map[string]any{"id": "tok000000003", "name": b["name"], "token": "kod_NEWtoken0123456789abcdefghijklm",
			"permissions": b["permissions"], "expiresAt": exp, "username": nil, "message": "Save this token - it will not be shown again"})
	})
	h("DELETE", "/tokens/{id}", func(w http.ResponseWriter, r *http.Request, _ map[string]any) {
		if vars(r, "id") == "owner0000001" {
			fail(w, 400, "Cannot delete your own token")
			return
		}
		w.WriteHeader(204)
	})
}
