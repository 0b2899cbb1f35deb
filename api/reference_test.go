package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// call is one request of a reference table and what it must answer.
type refCase struct {
	name, method, path, auth, body string
	code                           int
	msg                            string   // the {"error"} message, when set
	has                            []string // substrings of the body
	hasNot                         []string
}

func (e *env) table(t *testing.T, cases []refCase) {
	t.Helper()
	for _, c := range cases {
		code, body, _ := e.req(c.method, c.path, c.auth, c.body)
		ok := code == c.code && (c.msg == "" || errorOf(body) == c.msg)
		for _, s := range c.has {
			ok = ok && strings.Contains(body, s)
		}
		for _, s := range c.hasNot {
			ok = ok && !strings.Contains(body, s)
		}
		if !ok {
			t.Errorf("%s: %s %s -> %d %s; want %d %q has %q", c.name, c.method, c.path, code, strings.TrimSpace(body), c.code, c.msg, c.has)
		}
	}
}

var allRepoPerms = []forge.Permission{forge.PermRepoRead, forge.PermRepoWrite, forge.PermRepoDelete, forge.PermCollaboratorRead,
	forge.PermCollaboratorWrite, forge.PermWorkflowRead, forge.PermWorkflowTrigger}

// TestReferenceRepositories walks the repository, collaborator and
// protection routes of the reference with their status codes and messages.
func TestReferenceRepositories(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	A := bearer(admin)
	owner := bearer(e.token(allRepoPerms, "")) // a system token: sees everything, owns what it creates
	other := bearer(e.token(allRepoPerms, "")) // another system token: not the owner
	alice := bearer(e.token(allRepoPerms, "alice"))
	bob := bearer(e.token(allRepoPerms, "bob"))
	ro := bearer(e.token([]forge.Permission{forge.PermRepoRead}, ""))
	e.table(t, []refCase{
		{name: "create", method: "POST", path: "/repos", auth: owner, body: `{"name":"proj"}`, code: 201,
			has: []string{`"id":"`, `"name":"proj"`, `"protectedBranches":[]`, `"ownerTokenId":"`, `"createdAt":`, `"path":"` + e.dir("proj") + `"`}, hasNot: []string{"ownerUsername"}},
		{name: "create needs repo:write", method: "POST", path: "/repos", auth: ro, body: `{"name":"x"}`, code: 403, msg: "Permission denied"},
		{name: "create duplicate", method: "POST", path: "/repos", auth: owner, body: `{"name":"proj"}`, code: 409, msg: "Repository already exists"},
		{name: "create no name", method: "POST", path: "/repos", auth: owner, body: `{}`, code: 400, msg: "Name is required"},
		{name: "create bad name", method: "POST", path: "/repos", auth: owner, body: `{"name":"a.b"}`, code: 400, msg: "Name must be alphanumeric with hyphens and underscores only"},
		{name: "alice creates hers", method: "POST", path: "/repos", auth: alice, body: `{"name":"alices"}`, code: 201},
		{name: "get", method: "GET", path: "/repos/proj", auth: owner, code: 200,
			has: []string{`"collaborators":[]`, `"branches":[]`, `"defaultBranch":null`, `"protectedBranches":[]`}},
		{name: "get missing", method: "GET", path: "/repos/nope", auth: owner, code: 404, msg: "Repository not found"},
		{name: "get by a non-collaborator", method: "GET", path: "/repos/proj", auth: bob, code: 403, msg: "Access denied"},
		{name: "list, system token", method: "GET", path: "/repos", auth: other, code: 200, has: []string{`"name":"proj"`, `"name":"alices"`}},
		{name: "list, alice sees what she owns", method: "GET", path: "/repos", auth: alice, code: 200, has: []string{`"name":"alices"`}, hasNot: []string{`"proj"`}},
		{name: "list, bob sees nothing", method: "GET", path: "/repos", auth: bob, code: 200, has: []string{`[]`}},

		{name: "collaborators empty", method: "GET", path: "/repos/proj/collaborators", auth: owner, code: 200, has: []string{`{"repoName":"proj","collaborators":[],"details":[]}`}},
		{name: "add collaborator", method: "POST", path: "/repos/proj/collaborators", auth: owner, body: `{"username":"alice"}`, code: 201, has: []string{`"collaborators":["alice"]`, `"username":"alice","addedAt":`}},
		{name: "add duplicate", method: "POST", path: "/repos/proj/collaborators", auth: owner, body: `{"username":"alice"}`, code: 409, msg: "Collaborator already added to this repository"},
		{name: "add without username", method: "POST", path: "/repos/proj/collaborators", auth: owner, body: `{}`, code: 400, msg: "Username is required"},
		{name: "add invalid username", method: "POST", path: "/repos/proj/collaborators", auth: owner, body: `{"username":"../x"}`, code: 400},
		{name: "add by a non-owner", method: "POST", path: "/repos/proj/collaborators", auth: other, body: `{"username":"carol"}`, code: 403, msg: "Only the repository owner can manage collaborators"},
		{name: "add by a collaborator", method: "POST", path: "/repos/proj/collaborators", auth: alice, body: `{"username":"carol"}`, code: 403, msg: "Only the repository owner can manage collaborators"},
		{name: "admin adds", method: "POST", path: "/repos/proj/collaborators", auth: A, body: `{"username":"carol"}`, code: 201, has: []string{`"collaborators":["alice","carol"]`}},
		{name: "alice now sees proj", method: "GET", path: "/repos", auth: alice, code: 200, has: []string{`"name":"proj"`, `"name":"alices"`}},
		{name: "get shows collaborators", method: "GET", path: "/repos/proj", auth: alice, code: 200, has: []string{`"collaborators":["alice","carol"]`}},
		{name: "collaborator lists", method: "GET", path: "/repos/proj/collaborators", auth: alice, code: 200, has: []string{`"collaborators":["alice","carol"]`}},
		{name: "remove unknown", method: "DELETE", path: "/repos/proj/collaborators/dave", auth: owner, code: 404, msg: "Collaborator not found"},
		{name: "remove", method: "DELETE", path: "/repos/proj/collaborators/carol", auth: owner, code: 204},
		{name: "remove again", method: "DELETE", path: "/repos/proj/collaborators/carol", auth: owner, code: 404, msg: "Collaborator not found"},

		{name: "protections empty", method: "GET", path: "/repos/proj/protections", auth: ro, code: 200, has: []string{`{"branches":[]}`}},
		{name: "protect main", method: "PUT", path: "/repos/proj/protections/branches/main", auth: owner, code: 200, has: []string{`{"branches":["main"]}`}},
		{name: "protect nested", method: "PUT", path: "/repos/proj/protections/branches/release/1.0", auth: A, code: 200, has: []string{`{"branches":["main","release/1.0"]}`}},
		{name: "protect again is idempotent", method: "PUT", path: "/repos/proj/protections/branches/main", auth: owner, code: 200, has: []string{`{"branches":["main","release/1.0"]}`}},
		{name: "protect invalid", method: "PUT", path: "/repos/proj/protections/branches/a..b", auth: owner, code: 400, msg: "Invalid branch name"},
		{name: "protect leading dash", method: "PUT", path: "/repos/proj/protections/branches/-x", auth: owner, code: 400, msg: "Invalid branch name"},
		{name: "protect by a collaborator", method: "PUT", path: "/repos/proj/protections/branches/dev", auth: alice, code: 403, msg: "Only the repository owner can change branch protections"},
		{name: "protect without repo:write", method: "PUT", path: "/repos/proj/protections/branches/dev", auth: ro, code: 403, msg: "Permission denied"},
		{name: "list protections, other path", method: "GET", path: "/repos/proj/protections/branches", auth: alice, code: 200, has: []string{`{"branches":["main","release/1.0"]}`}},
		{name: "repo shows protections", method: "GET", path: "/repos/proj", auth: owner, code: 200, has: []string{`"protectedBranches":["main","release/1.0"]`}},
		{name: "unprotect", method: "DELETE", path: "/repos/proj/protections/branches/release/1.0", auth: owner, code: 200, has: []string{`{"branches":["main"]}`}},
		{name: "unprotect absent", method: "DELETE", path: "/repos/proj/protections/branches/nope", auth: owner, code: 200, has: []string{`{"branches":["main"]}`}},

		{name: "delete without repo:delete", method: "DELETE", path: "/repos/proj", auth: ro, code: 403, msg: "Permission denied"},
		{name: "delete missing without repo:delete", method: "DELETE", path: "/repos/nope", auth: ro, code: 403, msg: "Permission denied"},
		{name: "delete by a non-owner", method: "DELETE", path: "/repos/proj", auth: other, code: 403, msg: "Only the repository owner can delete this repository"},
		{name: "delete by a collaborator", method: "DELETE", path: "/repos/proj", auth: alice, code: 403, msg: "Only the repository owner can delete this repository"},
		{name: "delete missing", method: "DELETE", path: "/repos/nope", auth: owner, code: 404, msg: "Repository not found"},
		{name: "delete", method: "DELETE", path: "/repos/proj", auth: owner, code: 204},
		{name: "gone", method: "GET", path: "/repos/proj", auth: owner, code: 404, msg: "Repository not found"},
		{name: "admin deletes any", method: "DELETE", path: "/repos/alices", auth: A, code: 204},
	})
	if entries, _ := readDirNames(e.reposDir); len(entries) != 0 {
		t.Errorf("repos dir after deleting everything: %v", entries)
	}
}

// TestReferenceTokens covers /tokens: admin only, defaults, the rules and
// messages of creation, the secret shown once, expiry, deletion.
func TestReferenceTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	A := bearer(admin)
	e.newRepo("r", admin)
	e.must("POST", "/repos/r/collaborators", A, `{"username":"alice"}`, 201)
	notAdmin := bearer(e.token(without(), ""))
	e.table(t, []refCase{
		{name: "list needs admin", method: "GET", path: "/tokens", auth: notAdmin, code: 403, msg: "Admin permission required"},
		{name: "create needs admin", method: "POST", path: "/tokens", auth: notAdmin, body: `{"name":"x"}`, code: 403, msg: "Admin permission required"},
		{name: "delete needs admin", method: "DELETE", path: "/tokens/abc", auth: notAdmin, code: 403, msg: "Admin permission required"},
		{name: "no name", method: "POST", path: "/tokens", auth: A, body: `{}`, code: 400, msg: "Token name is required"},
		{name: "blank name", method: "POST", path: "/tokens", auth: A, body: `{"name":"  "}`, code: 400, msg: "Token name is required"},
		{name: "NUL in the name", method: "POST", path: "/tokens", auth: A, body: `{"name":"ci\u0000x"}`, code: 400, msg: "Token name must not contain control characters (such as NUL, tab, newline or ESC)"},
		{name: "ANSI escape in the name", method: "POST", path: "/tokens", auth: A, body: `{"name":"\u001b[2J\u001b[31mci"}`, code: 400, msg: "Token name must not contain control characters (such as NUL, tab, newline or ESC)"},
		{name: "C1 CSI in the name", method: "POST", path: "/tokens", auth: A, body: `{"name":"ci\u009b31m"}`, code: 400, msg: "Token name must not contain control characters (such as NUL, tab, newline or ESC)"},
		{name: "bad permission", method: "POST", path: "/tokens", auth: A, body: `{"name":"x","permissions":["repo:read","root"]}`, code: 400, msg: "Invalid permission: root"},
		{name: "expiry 0", method: "POST", path: "/tokens", auth: A, body: `{"name":"x","expiresInDays":0}`, code: 400, msg: "expiresInDays must be between 1 and 365"},
		{name: "expiry 366", method: "POST", path: "/tokens", auth: A, body: `{"name":"x","expiresInDays":366}`, code: 400, msg: "expiresInDays must be between 1 and 365"},
		{name: "unknown username", method: "POST", path: "/tokens", auth: A, body: `{"name":"x","username":"zed"}`, code: 400, msg: "Collaborator 'zed' not found"},
		{name: "malformed username", method: "POST", path: "/tokens", auth: A, body: `{"name":"x","username":"../a"}`, code: 400, msg: "Collaborator '../a' not found"},
		{name: "unknown field", method: "POST", path: "/tokens", auth: A, body: `{"name":"x","scopes":[]}`, code: 400, msg: `Unknown field "scopes"`},
		{name: "delete unknown", method: "DELETE", path: "/tokens/nope", auth: A, code: 404, msg: "Token not found"},
	})
	// Defaults, the secret shown once, and the listing without secrets.
	body := e.must("POST", "/tokens", A, `{"name":"ci"}`, 201)
	var created map[string]any
	json.Unmarshal([]byte(body), &created)
	secret, _ := created["token"].(string)
	if !forge.LooksLikeToken(secret) || created["message"] != "Save this token - it will not be shown again" ||
		created["expiresAt"] != nil || created["username"] != nil || len(created["id"].(string)) != 12 {
		t.Errorf("created: %s", body)
	}
	if perms, _ := json.Marshal(created["permissions"]); string(perms) != `["repo:read","repo:write"]` {
		t.Errorf("default permissions: %s", perms)
	}
	body = e.must("POST", "/tokens", A, `{"name":"alice-ci","permissions":["repo:read","repo:read","workflow:trigger"],"expiresInDays":30,"username":"alice"}`, 201)
	json.Unmarshal([]byte(body), &created)
	if perms, _ := json.Marshal(created["permissions"]); string(perms) != `["repo:read","workflow:trigger"]` || created["username"] != "alice" {
		t.Errorf("created for alice: %s", body)
	}
	if exp, _ := created["expiresAt"].(float64); exp < float64(forge.NowMillis()+29*86400e3) || exp > float64(forge.NowMillis()+30*86400e3) {
		t.Errorf("expiresAt %v is not 30 days ahead", created["expiresAt"])
	}
	// The new token works; lastUsedAt is recorded.
	e.must("GET", "/repos", bearer(secret), "", 200)
	list := e.must("GET", "/tokens", A, "", 200)
	if strings.Contains(list, secret) || strings.Contains(list, forge.HashToken(secret)) || strings.Contains(list, `"hash"`) || strings.Contains(list, `"token"`) {
		t.Errorf("token list leaks secrets: %s", list)
	}
	var tokens []struct {
		ID, Name   string
		LastUsedAt int64
	}
	json.Unmarshal([]byte(list), &tokens)
	used := false
	for _, tk := range tokens {
		used = used || tk.Name == "ci" && tk.LastUsedAt > 0
	}
	if len(tokens) != 4 || !used {
		t.Errorf("tokens: %s", list)
	}
	// Own token: 400; another: 204, after which it stops working.
	if code, b, _ := e.req("DELETE", "/tokens/"+e.tokenID(admin), A, ""); code != 400 || errorOf(b) != "Cannot delete your own token" {
		t.Errorf("delete own: %d %s", code, b)
	}
	e.must("DELETE", "/tokens/"+e.tokenID(secret), A, "", 204)
	if code, _, _ := e.req("GET", "/repos", bearer(secret), ""); code != 401 {
		t.Errorf("deleted token still works: %d", code)
	}
}

// TestExpiredTokenRefusedAndRemoved: an expired token gets 401 and is
// deleted on the way.
func TestExpiredTokenRefusedAndRemoved(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	secret := forge.NewTokenSecret()
	tok := &forge.Token{ID: forge.NewID(), Name: "old", Hash: forge.HashToken(secret), Permissions: []forge.Permission{forge.PermAdmin}, ExpiresAt: forge.NowMillis() - 1}
	if err := e.store.CreateToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if code, body, h := e.req("GET", "/repos", basic(secret), ""); code != 401 || errorOf(body) != "Unauthorized" || h.Get("WWW-Authenticate") == "" {
		t.Errorf("expired: %d %s", code, body)
	}
	if _, err := e.store.GetToken(context.Background(), tok.ID); err == nil {
		t.Errorf("expired token still stored")
	}
}

// TestErrorShapes: unknown routes, wrong methods, malformed bodies.
func TestErrorShapes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	A := bearer(admin)
	e.newRepo("r", admin)
	e.table(t, []refCase{
		{name: "unknown route", method: "GET", path: "/nope/deeper", auth: A, code: 404, has: []string{`{"error":"Not found"}`}},
		{name: "unknown route, no token", method: "GET", path: "/nope", code: 401, msg: "Unauthorized"},
		{name: "bad JSON", method: "POST", path: "/repos/r/collaborators", auth: A, body: `{"username":`, code: 400, msg: "Invalid JSON body: unexpected end of input"},
		{name: "unknown field", method: "PATCH", path: "/repos/r", auth: A, body: `{"name":"s","private":true}`, code: 400, msg: `Unknown field "private"`},
		{name: "wrong type", method: "POST", path: "/repos/import", auth: A, body: `{"source":1}`, code: 400, msg: `Invalid JSON body: field "source" must be a string`},
	})
	for _, c := range []struct{ method, path, allow string }{
		{"PUT", "/repos/r", "GET, PATCH, DELETE"},
		{"DELETE", "/repos", "GET, POST"},
		{"GET", "/repos/r/protections/branches/main", "PUT, DELETE"},
		{"PATCH", "/tokens", "GET, POST"},
		{"POST", "/health", "GET, HEAD"},
	} {
		code, body, h := e.req(c.method, c.path, A, "")
		if code != 405 || errorOf(body) != "Method not allowed" || h.Get("Allow") != c.allow {
			t.Errorf("%s %s: %d %s Allow=%q, want 405 Allow=%q", c.method, c.path, code, body, h.Get("Allow"), c.allow)
		}
	}
}
