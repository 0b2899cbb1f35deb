package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

const wf = "[[steps]]\nname = \"t\"\nrun = \"true\"\n"

// TestReferenceWorkflows: trigger, list, get, and /workflows/status
// filtered to the repositories the token can read.
func TestReferenceWorkflows(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	src := sourceRepo(t, map[string]string{".kod/workflows/ci.toml": wf}, "dev")
	for _, name := range []string{"shared", "private"} {
		e.newRepo(name, admin)
		fill(t, e.dir(name), src)
	}
	e.must("POST", "/repos/shared/collaborators", bearer(admin), `{"username":"alice"}`, 201)
	alice := bearer(e.token([]forge.Permission{forge.PermWorkflowRead, forge.PermWorkflowTrigger}, "alice"))
	reader := bearer(e.token([]forge.Permission{forge.PermWorkflowRead}, ""))

	var queued struct{ ID, Status, Message string }
	body := e.must("POST", "/repos/shared/workflows", alice, `{"branch":"dev","files":[".kod/workflows/ci.toml"]}`, 202)
	json.Unmarshal([]byte(body), &queued)
	if queued.Status != "queued" || len(queued.ID) != 12 {
		t.Fatalf("trigger: %s", body)
	}
	e.must("POST", "/repos/private/workflows", bearer(admin), `{}`, 202)
	e.table(t, []refCase{
		{name: "trigger needs workflow:trigger", method: "POST", path: "/repos/shared/workflows", auth: reader, body: `{}`, code: 403, msg: "Permission denied"},
		{name: "trigger elsewhere", method: "POST", path: "/repos/private/workflows", auth: alice, body: `{}`, code: 403, msg: "Access denied"},
		{name: "files outside", method: "POST", path: "/repos/shared/workflows", auth: alice, body: `{"files":["x.toml"]}`, code: 400, msg: "Workflow files must be inside .kod/workflows/"},
		{name: "list", method: "GET", path: "/repos/shared/workflows", auth: alice, code: 200, has: []string{`"id":"` + queued.ID + `"`, `"repoName":"shared"`, `"branch":"dev"`, `"status":"queued"`}},
		{name: "list elsewhere", method: "GET", path: "/repos/private/workflows", auth: alice, code: 403, msg: "Access denied"},
		{name: "get", method: "GET", path: "/repos/shared/workflows/" + queued.ID, auth: alice, code: 200, has: []string{`"id":"` + queued.ID + `"`}},
		{name: "get through another repository", method: "GET", path: "/repos/private/workflows/" + queued.ID, auth: bearer(admin), code: 404, msg: "Workflow run not found"},
		{name: "get missing", method: "GET", path: "/repos/shared/workflows/nope", auth: alice, code: 404, msg: "Workflow run not found"},
		{name: "status needs workflow:read", method: "GET", path: "/workflows/status", auth: bearer(e.token([]forge.Permission{forge.PermRepoRead}, "")), code: 403, msg: "Permission denied"},
	})
	// /workflows/status counts only what each token can read.
	for _, c := range []struct {
		auth   string
		queued int
		repos  []string
	}{
		{alice, 1, []string{"shared"}},
		{reader, 2, []string{"shared", "private"}},
		{bearer(e.token([]forge.Permission{forge.PermWorkflowRead}, "bob")), 0, nil},
	} {
		var st struct {
			Summary map[string]int
			Recent  []forge.Run
		}
		json.Unmarshal([]byte(e.must("GET", "/workflows/status", c.auth, "", 200)), &st)
		var got []string
		for _, r := range st.Recent {
			got = append(got, r.RepoName)
		}
		if st.Summary["queued"] != c.queued || len(st.Recent) != c.queued || (c.queued > 0 && !strings.Contains(strings.Join(c.repos, ","), got[0])) {
			t.Errorf("status for %s: %+v %v", c.auth[:12], st.Summary, got)
		}
		for _, k := range []string{"queued", "running", "completed", "failed"} {
			if _, ok := st.Summary[k]; !ok {
				t.Errorf("summary lacks %s", k)
			}
		}
	}
}
