package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// TestTriggerChecks: a commit must be on the branch the run is labelled
// with; files are de-duplicated and capped, with clear messages.
func TestTriggerChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	files := map[string]string{".kod/workflows/ci.toml": wf, ".kod/workflows/b.toml": wf}
	for i := range 100 {
		files[fmt.Sprintf(".kod/workflows/w%d.toml", i)] = wf
	}
	src := sourceRepo(t, files, "feature")
	e.newRepo("r", admin)
	fill(t, e.dir("r"), src)
	e.must("POST", "/repos/r/collaborators", bearer(admin), `{"username":"alice"}`, 201)
	alice := bearer(e.token([]forge.Permission{forge.PermWorkflowRead, forge.PermWorkflowTrigger}, "alice"))
	onMain := git(t, e.dir("r"), "rev-parse", "refs/heads/main")
	onFeature := git(t, e.dir("r"), "rev-parse", "refs/heads/feature") // a child of main's commit

	trigger := func(body string) string {
		return fmt.Sprintf(`{"branch":%s}`, body)
	}
	many := func(n int, name func(i int) string) string {
		var files []string
		for i := range n {
			files = append(files, `"`+name(i)+`"`)
		}
		return strings.Join(files, ",")
	}
	e.table(t, []refCase{
		{name: "feature's commit as main", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"main","commit":"` + onFeature + `"`), code: 400, msg: "Commit is not on branch 'main'"},
		{name: "abbreviated", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"main","commit":"` + onFeature[:10] + `"`), code: 400, msg: "Commit is not on branch 'main'"},
		{name: "an ancestor of the branch", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"feature","commit":"` + onMain + `"`), code: 202},
		{name: "the head", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"main","commit":"` + onMain[:8] + `"`), code: 202},
		{name: "unknown commit", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"main","commit":"` + strings.Repeat("e", 40) + `"`), code: 400, msg: "Invalid commit"},
		{name: "malformed commit", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"main","commit":"HEAD~1"`), code: 400, msg: "Invalid commit"},
		{name: "a tag's commit", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"main","commit":"` + git(t, e.dir("r"), "rev-parse", "v1.1") + `"`), code: 202},
		{name: "commit on a missing branch", method: "POST", path: "/repos/r/workflows", auth: alice, body: trigger(`"gone","commit":"` + onMain + `"`), code: 400, msg: "Branch 'gone' does not exist"},
		{name: "101 different files", method: "POST", path: "/repos/r/workflows", auth: alice, body: `{"files":[` + many(101, func(i int) string { return fmt.Sprintf(".kod/workflows/w%d.toml", i) }) + `]}`, code: 400, msg: "Too many workflow files: a run may have at most 100"},
		{name: "100 different files", method: "POST", path: "/repos/r/workflows", auth: alice, body: `{"files":[` + many(100, func(i int) string { return fmt.Sprintf(".kod/workflows/w%d.toml", i) }) + `]}`, code: 202},
		{name: "escape in a file name", method: "POST", path: "/repos/r/workflows", auth: alice, body: `{"files":[".kod/workflows/\u001b[2Jx.toml"]}`, code: 400, msg: "Workflow file names must be at most 255 bytes, without control characters"},
		{name: "long file name", method: "POST", path: "/repos/r/workflows", auth: alice, body: `{"files":[".kod/workflows/` + strings.Repeat("x", 251) + `.toml"]}`, code: 400, msg: "Workflow file names must be at most 255 bytes, without control characters"},
		// TestTriggerMissingFileRefused: refused at once, not a run that fails.
		{name: "a file missing at the commit", method: "POST", path: "/repos/r/workflows", auth: alice, body: `{"files":[".kod/workflows/ci.toml",".kod/workflows/missing.toml"]}`, code: 400, msg: "Workflow file '.kod/workflows/missing.toml' not found at commit " + onMain[:12]},
		{name: "a file of another branch", method: "POST", path: "/repos/r/workflows", auth: alice, body: `{"branch":"main","files":["./.kod/workflows/only-on-feature.toml"]}`, code: 400, msg: "Workflow file '.kod/workflows/only-on-feature.toml' not found at commit " + onMain[:12]},
	})

	// 38,000 copies of one path (a 950 KB body) make one file.
	body := e.must("POST", "/repos/r/workflows", alice, `{"files":[`+many(38000, func(i int) string { return []string{".kod/workflows/ci.toml", "./.kod/workflows/ci.toml"}[i%2] })+`,".kod/workflows/b.toml",".kod/workflows/ci.toml"]}`, 202)
	var queued struct{ ID string }
	json.Unmarshal([]byte(body), &queued)
	var run forge.Run
	json.Unmarshal([]byte(e.must("GET", "/repos/r/workflows/"+queued.ID, alice, "", 200)), &run)
	if strings.Join(run.Files, " ") != ".kod/workflows/ci.toml .kod/workflows/b.toml" {
		t.Errorf("files of the run: %d %.200q", len(run.Files), run.Files)
	}
}

// TestDefaultBranchUpdate: PATCH /repos/:name {defaultBranch} points HEAD at
// an existing branch (owner or admin), alone or with a rename, and checks
// everything before anything moves.
func TestDefaultBranchUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token([]forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}, "")
	e.newRepo("r", owner)
	e.newRepo("taken", owner)
	fill(t, e.dir("r"), sourceRepo(t, map[string]string{"a": "a"}, "dev", "release/1"))
	e.must("POST", "/repos/r/collaborators", bearer(admin), `{"username":"alice"}`, 201)
	alice := bearer(e.token([]forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}, "alice"))
	head := func(repo string) string { return git(t, e.dir(repo), "symbolic-ref", "HEAD") }
	e.table(t, []refCase{
		{name: "set", method: "PATCH", path: "/repos/r", auth: bearer(owner), body: `{"defaultBranch":"dev"}`, code: 200, has: []string{`"name":"r"`, `"defaultBranch":"dev"`, `"branches":["dev","main","release/1"]`}},
		{name: "collaborator", method: "PATCH", path: "/repos/r", auth: alice, body: `{"defaultBranch":"main"}`, code: 403, msg: "Only the repository owner can update this repository"},
		{name: "without repo:write", method: "PATCH", path: "/repos/r", auth: bearer(e.token([]forge.Permission{forge.PermRepoRead}, "")), body: `{"defaultBranch":"main"}`, code: 403, msg: "Permission denied"},
		{name: "stranger", method: "PATCH", path: "/repos/r", auth: bearer(e.token([]forge.Permission{forge.PermRepoWrite}, "alice2")), body: `{"defaultBranch":"main"}`, code: 403, msg: "Access denied"},
		{name: "missing branch", method: "PATCH", path: "/repos/r", auth: bearer(owner), body: `{"defaultBranch":"nope"}`, code: 400, msg: "Branch 'nope' does not exist"},
		{name: "invalid branch", method: "PATCH", path: "/repos/r", auth: bearer(owner), body: `{"defaultBranch":"a..b"}`, code: 400, msg: "Invalid branch name"},
		{name: "empty branch", method: "PATCH", path: "/repos/r", auth: bearer(owner), body: `{"defaultBranch":""}`, code: 400, msg: "Invalid branch name"},
		{name: "rename onto a taken name", method: "PATCH", path: "/repos/r", auth: bearer(owner), body: `{"name":"taken","defaultBranch":"main"}`, code: 409, msg: "A repository with that name already exists"},
	})
	if got := head("r"); got != "refs/heads/dev" {
		t.Errorf("HEAD after the refused requests: %s", got)
	}
	e.must("PATCH", "/repos/r", bearer(admin), `{"name":"r2","defaultBranch":"release/1"}`, 200)
	if got := head("r2"); got != "refs/heads/release/1" {
		t.Errorf("HEAD after rename and set: %s", got)
	}
	if body := e.must("GET", "/repos/r2", bearer(owner), "", 200); !strings.Contains(body, `"defaultBranch":"release/1"`) {
		t.Errorf("GET after the update: %s", body)
	}
}
