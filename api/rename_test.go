package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/repos"
)

// TestRenameCarriesEverything: PATCH /repos/:name moves the directory, and
// collaborators, protections and runs follow; the old name is free.
func TestRenameCarriesEverything(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	A := bearer(admin)
	owner := e.token(allRepoPerms, "")
	e.newRepo("old", owner)
	fill(t, e.dir("old"), sourceRepo(t, map[string]string{".kod/workflows/ci.toml": wf}, "dev"))
	before := refs(t, e.dir("old"))
	e.must("POST", "/repos/old/collaborators", bearer(owner), `{"username":"alice"}`, 201)
	e.must("PUT", "/repos/old/protections/branches/main", bearer(owner), "", 200)
	var run struct{ ID string }
	json.Unmarshal([]byte(e.must("POST", "/repos/old/workflows", A, `{}`, 202)), &run)

	body := e.must("PATCH", "/repos/old", bearer(owner), `{"name":"new"}`, 200)
	var got struct {
		Name, Path, OwnerTokenID string
		ProtectedBranches        []string
	}
	json.Unmarshal([]byte(body), &got)
	if got.Name != "new" || got.Path != e.dir("new") || got.OwnerTokenID != e.tokenID(owner) || len(got.ProtectedBranches) != 1 {
		t.Errorf("rename answer: %s", body)
	}
	if _, err := os.Stat(e.dir("old")); !os.IsNotExist(err) {
		t.Errorf("old directory still there: %v", err)
	}
	if after := refs(t, e.dir("new")); after != before {
		t.Errorf("refs changed by the rename:\n%s\n---\n%s", before, after)
	}
	if st, err := os.Stat(filepath.Join(e.dir("new"), "hooks", "pre-receive")); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("hooks after rename: %v", err)
	}
	alice := bearer(e.token(allRepoPerms, "alice"))
	e.table(t, []refCase{
		{name: "old name gone", method: "GET", path: "/repos/old", auth: A, code: 404, msg: "Repository not found"},
		{name: "collaborator follows", method: "GET", path: "/repos/new", auth: alice, code: 200, has: []string{`"collaborators":["alice"]`, `"protectedBranches":["main"]`, `"branches":["dev","main"]`, `"defaultBranch":"main"`}},
		{name: "protection follows", method: "GET", path: "/repos/new/protections", auth: alice, code: 200, has: []string{`{"branches":["main"]}`}},
		{name: "runs follow", method: "GET", path: "/repos/new/workflows/" + run.ID, auth: A, code: 200, has: []string{`"repoName":"new"`}},
		{name: "no runs under the old name", method: "GET", path: "/repos/old/workflows", auth: A, code: 404},
		{name: "same name", method: "PATCH", path: "/repos/new", auth: A, body: `{"name":"new"}`, code: 200, has: []string{`"name":"new"`}},
		{name: "no name", method: "PATCH", path: "/repos/new", auth: A, body: `{}`, code: 400, msg: "Name is required"},
		{name: "old name reusable", method: "POST", path: "/repos", auth: A, body: `{"name":"old"}`, code: 201},
	})
	if q, _ := e.store.QueuedRuns(context.Background()); len(q) != 1 || q[0].RepoName != "new" {
		t.Errorf("queue after rename: %+v", q)
	}
}

// TestRenameRefusals: a taken name (in the store or on disk) is 409 and
// changes neither repository; invalid and escaping names are 400 and
// create nothing.
func TestRenameRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	A := bearer(admin)
	e.newRepo("a", admin)
	e.newRepo("b", admin)
	fill(t, e.dir("a"), sourceRepo(t, nil, "x"))
	fill(t, e.dir("b"), sourceRepo(t, nil, "y"))
	e.must("PUT", "/repos/b/protections/branches/main", A, "", 200)
	refsA, refsB := refs(t, e.dir("a")), refs(t, e.dir("b"))
	stray := filepath.Join(e.reposDir, "stray.git")
	os.MkdirAll(stray, 0o755)
	os.WriteFile(filepath.Join(stray, "keep"), []byte("mine"), 0o644)
	os.MkdirAll(filepath.Join(e.reposDir, "empty.git"), 0o755)

	cases := []refCase{
		{name: "taken", method: "PATCH", path: "/repos/a", auth: A, body: `{"name":"b"}`, code: 409, msg: "A repository with that name already exists"},
		{name: "stray directory", method: "PATCH", path: "/repos/a", auth: A, body: `{"name":"stray"}`, code: 409, msg: "A repository with that name already exists"},
		{name: "empty stray directory", method: "PATCH", path: "/repos/a", auth: A, body: `{"name":"empty"}`, code: 409, msg: "A repository with that name already exists"},
	}
	for _, bad := range badNames {
		cases = append(cases, refCase{name: "bad " + bad, method: "PATCH", path: "/repos/a", auth: A, body: `{"name":` + jsonString(bad) + `}`, code: 400})
	}
	e.table(t, cases)
	if refs(t, e.dir("a")) != refsA || refs(t, e.dir("b")) != refsB {
		t.Errorf("refused renames changed refs")
	}
	if data, _ := os.ReadFile(filepath.Join(stray, "keep")); string(data) != "mine" {
		t.Errorf("stray directory touched")
	}
	assertOnlyEntries(t, e.reposDir, "a.git", "b.git", "empty.git", "stray.git")
}

// failingRename is a store whose RenameRepo fails.
type failingRename struct{ forge.Store }

func (failingRename) RenameRepo(context.Context, string, string) (*forge.Repo, error) {
	return nil, errors.New("disk full")
}

// TestRenameRollsBack: when the record cannot move the directory moves
// back; when the directory cannot move the record stays.
func TestRenameRollsBack(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, func(d *api.Deps, rc *repos.Config) { d.Store = failingRename{d.Store}; rc.Store = d.Store })
	e.newRepo("a", admin)
	if code, body, _ := e.req("PATCH", "/repos/a", bearer(admin), `{"name":"b"}`); code != 500 || errorOf(body) != "Internal server error" || strings.Contains(body, "disk full") {
		t.Errorf("failing store: %d %s", code, body)
	}
	assertOnlyEntries(t, e.reposDir, "a.git")

	e2 := newEnv(t)
	e2.newRepo("a", admin)
	os.RemoveAll(e2.dir("a")) // the directory vanished behind the server's back
	if code, body, _ := e2.req("PATCH", "/repos/a", bearer(admin), `{"name":"b"}`); code != 500 || strings.Contains(body, e2.reposDir) {
		t.Errorf("failing move: %d %s", code, body)
	}
	// Still recorded (and still broken): a 500 that shows no path or git error.
	if code, body, h := e2.req("GET", "/repos/a", bearer(admin), ""); code != 500 || strings.TrimSpace(body) != `{"error":"Internal server error"}` || h.Get("X-Request-Id") == "" {
		t.Errorf("broken repository: %d %s", code, body)
	}
	if _, err := e2.store.GetRepo(context.Background(), "b"); !errors.Is(err, forge.ErrNotFound) {
		t.Errorf("record moved although the directory did not: %v", err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// assertOnlyEntries fails unless dir holds exactly names.
func assertOnlyEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	got, _ := readDirNames(dir)
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}
