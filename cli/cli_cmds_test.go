package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/client"
)

// TestCLIRequests checks what each changing command sends (method, path,
// body) and prints, against the contract fake.
func TestCLIRequests(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		stdin    string
		wantCall string // prefix of the request line
		wantOut  string // in stdout
		wantErr  string // in stderr, with exit status 1
	}{
		{"create", []string{"repo", "create", "web"}, "", `POST /repos {"name":"web"}`, "Created repository web", ""},
		{"create taken", []string{"repo", "create", "app"}, "", `POST /repos`, "", "kod: Repository already exists"},
		{"import", []string{"repo", "import", "https://example.com/x/project.git"}, "", `POST /repos/import {"source":"https://example.com/x/project.git"}`, "as repository project", ""},
		{"import named", []string{"repo", "import", "/srv/src.git", "--name", "src"}, "", `POST /repos/import {"name":"src","source":"/srv/src.git"}`, "", ""},
		{"rename", []string{"repo", "update", "app", "name", "web"}, "", `PATCH /repos/app {"name":"web"}`, "Renamed repository app to web", ""},
		{"rename taken", []string{"repo", "update", "app", "name", "docs"}, "", `PATCH /repos/app`, "", "A repository with that name already exists"},
		{"rename other field", []string{"repo", "update", "app", "owner", "x"}, "", "", "", "the name and the default branch can be changed"},
		{"default branch", []string{"repo", "update", "app", "default-branch", "main"}, "", `PATCH /repos/app {"defaultBranch":"main"}`, "Default branch of app is now main", ""},
		{"default branch missing", []string{"repo", "update", "app", "default-branch", "nope"}, "", `PATCH /repos/app {"defaultBranch":"nope"}`, "", "kod: Branch 'nope' does not exist"},
		{"delete", []string{"repo", "delete", "docs", "--yes"}, "", `DELETE /repos/docs`, "Deleted repository docs", ""},
		{"delete unknown", []string{"repo", "delete", "nope", "-y"}, "", `DELETE /repos/nope`, "", "kod: Repository not found"},
		{"collaborator add", []string{"repo", "app", "collaborator", "add", "carol"}, "", `POST /repos/app/collaborators {"username":"carol"}`, "Added collaborator carol to app", ""},
		{"collaborator dup", []string{"repo", "app", "collaborator", "add", "alice"}, "", `POST /repos/app/collaborators`, "", "Collaborator already added to this repository"},
		{"collaborator remove", []string{"repo", "app", "collaborator", "remove", "bob"}, "", `DELETE /repos/app/collaborators/bob`, "Removed collaborator bob", ""},
		{"protect slash", []string{"repo", "app", "protect", "release/1"}, "", `PUT /repos/app/protections/branches/release%2F1`, "Protected branches of app: main, release/1", ""},
		{"unprotect", []string{"repo", "app", "unprotect", "main"}, "", `DELETE /repos/app/protections/branches/main`, "app has no protected branches", ""},
		{"webhook add", []string{"repo", "app", "webhook", "add", "https://h.example/x", "--events", "push,workflow", "--secret", "s3"}, "",
			`POST /repos/app/webhooks {"events":["push","workflow"],"secret":"s3","url":"https://h.example/x"}`, "Added webhook hook00000002", ""},
		{"webhook bad url", []string{"repo", "app", "webhook", "add", "ftp://x"}, "", `POST /repos/app/webhooks`, "", "Webhook URL must use http or https"},
		{"webhook remove", []string{"repo", "app", "webhook", "remove", "hook00000001"}, "", `DELETE /repos/app/webhooks/hook00000001`, "Removed webhook", ""},
		{"webhook retry", []string{"repo", "app", "webhook", "retry", "hook00000001", "dlv000000002"}, "", `POST /repos/app/webhooks/hook00000001/deliveries/dlv000000002/retry`, "Retrying delivery dlv000000002", ""},
		{"secret stdin", []string{"repo", "app", "secret", "set", "API_KEY"}, "s3cret value\n", `PUT /repos/app/secrets/API_KEY {"value":"s3cret value"}`, "Saved secret API_KEY of app", ""},
		{"secret flag", []string{"repo", "app", "secret", "set", "API_KEY", "--value", "v"}, "", `PUT /repos/app/secrets/API_KEY {"value":"v"}`, "", ""},
		{"secret empty", []string{"repo", "app", "secret", "set", "API_KEY"}, "", "", "", "no value: pipe it on stdin or pass --value"},
		{"secret delete", []string{"repo", "app", "secret", "delete", "DEPLOY_TOKEN"}, "", `DELETE /repos/app/secrets/DEPLOY_TOKEN`, "Deleted secret DEPLOY_TOKEN", ""},
		{"token delete own", []string{"token", "delete", "owner0000001"}, "", `DELETE /tokens/owner0000001`, "", "kod: Cannot delete your own token"},
		{"token create default", []string{"token", "create", "x"}, "", `POST /tokens {"name":"x"}`, "kod_NEWtoken", ""},
		{"token create full", []string{"token", "create", "x", "--permissions", "repo:read,admin", "--expires", "7", "--username", "alice"}, "",
			`POST /tokens {"expiresInDays":7,"name":"x","permissions":["repo:read","admin"],"username":"alice"}`, "", ""},
		{"keys inline", []string{"keys", "add", "ssh-ed25519 AAAAkey me@box", "--name", "box"}, "", `POST /keys {"name":"box","publicKey":"ssh-ed25519 AAAAkey me@box"}`, "Added ssh-ed25519 key", ""},
		{"keys admin", []string{"keys", "add", "ssh-ed25519 AAAAkey", "--username", "bob"}, "", `POST /keys {"publicKey":"ssh-ed25519 AAAAkey","username":"bob"}`, "", ""},
		{"keys list user", []string{"keys", "list", "--username", "bob"}, "", `GET /keys?username=bob`, "", ""},
		{"keys remove", []string{"keys", "remove", "key000000001"}, "", `DELETE /keys/key000000001`, "Removed key key000000001", ""},
		{"trigger", []string{"workflow", "trigger", "app", "--branch", "dev", "--file", ".kod/workflows/a.toml"}, "", `POST /repos/app/workflows {"branch":"dev","files":[".kod/workflows/a.toml"]}`, "Queued run", ""},
		{"cancel", []string{"workflow", "cancel", "app", "run000000001"}, "", `POST /repos/app/workflows/run000000001/cancel`, "Cancellation of run run000000001 requested", ""},
		{"unknown run", []string{"workflow", "show", "app", "nope"}, "", `GET /repos/app/workflows/nope`, "", "kod: Workflow run not found"},
		{"missing arg", []string{"repo", "create"}, "", "", "", "missing NAME"},
		{"flags before name", []string{"repo", "--json", "app", "protected"}, "", `GET /repos/app/protections`, `"branches"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			res := runCLI(t, f, nil, tc.stdin, tc.args...)
			if tc.wantErr != "" {
				if res.code != 1 || !strings.Contains(res.stderr, tc.wantErr) {
					t.Fatalf("exit %d, stderr %q: want 1 and %q", res.code, res.stderr, tc.wantErr)
				}
			} else if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			if tc.wantCall != "" && !f.called(tc.wantCall) {
				t.Errorf("no request %q in %q", tc.wantCall, f.calls)
			}
			if !strings.Contains(res.stdout, tc.wantOut) {
				t.Errorf("stdout %q lacks %q", res.stdout, tc.wantOut)
			}
		})
	}
}

// TestCLIJSON decodes --json output of every listing.
func TestCLIJSON(t *testing.T) {
	f := newFakeAPI(t)
	decode := func(args []string, v any) {
		t.Helper()
		res := runCLI(t, f, nil, "", append(args, "--json")...)
		if res.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, res.code, res.stderr)
		}
		if err := json.Unmarshal([]byte(res.stdout), v); err != nil {
			t.Fatalf("%v: %v in %q", args, err, res.stdout)
		}
	}
	var repos []client.Repo
	decode([]string{"repo", "list"}, &repos)
	if len(repos) != 2 || repos[0].Name != "app" || repos[0].ProtectedBranches[0] != "main" {
		t.Errorf("repos: %+v", repos)
	}
	var detail client.RepoDetail
	decode([]string{"repo", "info", "app"}, &detail)
	if *detail.DefaultBranch != "main" || len(detail.Collaborators) != 2 || detail.Collaborators[1].Username != "bob" {
		t.Errorf("detail: %+v", detail)
	}
	var collabs struct {
		RepoName      string               `json:"repoName"`
		Collaborators client.Collaborators `json:"collaborators"`
	}
	decode([]string{"repo", "app", "collaborator", "list"}, &collabs)
	if collabs.RepoName != "app" || len(collabs.Collaborators) != 2 {
		t.Errorf("collaborators: %+v", collabs)
	}
	var runs []client.Run
	decode([]string{"workflow", "status", "app"}, &runs)
	if len(runs) != 2 || runs[0].ID != "run000000002" || runs[0].Result.Steps[0].Error == "" {
		t.Errorf("runs: %+v", runs)
	}
	var status client.StatusReport
	decode([]string{"workflow", "status"}, &status)
	if status.Summary["failed"] != 1 || len(status.Recent) != 2 {
		t.Errorf("status: %+v", status)
	}
	var tok client.NewToken
	decode([]string{"token", "create", "ci"}, &tok)
	if tok.Token == "" || tok.ID != "tok000000003" {
		t.Errorf("token: %+v", tok)
	}
	var ok map[string]bool
	decode([]string{"repo", "app", "secret", "delete", "X"}, &ok)
	if !ok["ok"] {
		t.Errorf("delete --json: %v", ok)
	}
}

// TestCLIFollow: trigger --follow prints the step output with headers and a
// summary and exits with the run's result, over the live stream and over
// the polling fallback of servers without it.
func TestCLIFollow(t *testing.T) {
	for _, live := range []bool{true, false} {
		for _, branch := range []string{"main", "broken"} {
			f := newFakeAPI(t)
			f.follow = live
			res := runCLI(t, f, nil, "", "workflow", "trigger", "app", "--branch", branch, "--follow")
			want := 0
			if branch == "broken" {
				want = 1
			}
			if res.code != want {
				t.Errorf("live=%v %s: exit %d, want %d: %s", live, branch, res.code, want, res.stderr)
			}
			if !strings.HasPrefix(res.stdout, "==> build\nline 1\nline 2\n\n") || !strings.Contains(res.stderr, "Queued run") {
				t.Errorf("live=%v %s: stdout %q stderr %q", live, branch, res.stdout, res.stderr)
			}
			golden(t, f, "follow_"+branch, res.stdout)
			if f.called("GET /repos/app/workflows/run000000003/logs?follow=true") != true {
				t.Errorf("live=%v: follow was not asked for: %q", live, f.calls)
			}
		}
	}
}

// TestLogWriterContinues: the polling fallback prints only what is new,
// and holds back the section of a step still "(running)" until it has its
// name.
func TestLogWriterContinues(t *testing.T) {
	var out strings.Builder
	lw := newLogWriter(&ui{}, &out)
	lw.Write([]byte("==> a\nx\n==> (running)\ny"))
	if out.String() != "==> a\nx\n" {
		t.Errorf("the running section was printed: %q", out.String())
	}
	lw.continueWith("==> a\nx\n==> (running)\ny\nz\n", false)
	lw.continueWith("==> a\nx\n==> b\ny\nz\n==> (running)\n", false)
	lw.continueWith("==> a\nx\n==> b\ny\nz\n==> c\nw\n", true)
	lw.continueWith("==> a\nx\n==> b\ny\nz\n==> c\nw\n", true)
	lw.continueWith("something else entirely", true)
	if want := "==> a\nx\n==> b\ny\nz\n==> c\nw\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// TestCLIAuthErrors: a refused token and a missing one say what to check;
// nothing prints the token.
func TestCLIAuthErrors(t *testing.T) {
	f := newFakeAPI(t)
	res := runCLI(t, f, map[string]string{"KOD_API_TOKEN": "kod_wrongwrongwrongwrongwrongwrong12"}, "", "repo", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "Unauthorized") || !strings.Contains(res.stderr, "KOD_API_TOKEN") {
		t.Errorf("refused token: %d %q", res.code, res.stderr)
	}
	if strings.Contains(res.stderr+res.stdout, "kod_wrong") {
		t.Errorf("the token was printed: %q", res.stderr)
	}
	res = runCLI(t, f, map[string]string{"KOD_API_TOKEN": ""}, "", "repo", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "no API token") {
		t.Errorf("no token: %d %q", res.code, res.stderr)
	}
	res = runCLI(t, nil, map[string]string{"KOD_SERVER_URL": "http://127.0.0.1:1", "KOD_API_TOKEN": "x"}, "", "repo", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "cannot reach the kod server at http://127.0.0.1:1") {
		t.Errorf("unreachable: %d %q", res.code, res.stderr)
	}
	res = runCLI(t, nil, map[string]string{"KOD_SERVER_URL": "localhost:3000", "KOD_API_TOKEN": "x"}, "", "repo", "list")
	if res.code != 1 || !strings.Contains(res.stderr, "must start with http") || !strings.Contains(res.stderr, "from env") {
		t.Errorf("bad URL: %d %q", res.code, res.stderr)
	}
}

// TestCLIInitAndPrecedence: init writes serverUrl and token with mode 0600
// keeping the server's keys, never prints the token; then config < env <
// flags.
func TestCLIInitAndPrecedence(t *testing.T) {
	f := newFakeAPI(t)
	cfg := filepath.Join(t.TempDir(), "kod", "config.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(`{"port": 4000, "token": "old"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KOD_CONFIG": cfg, "KOD_SERVER_URL": "", "KOD_API_TOKEN": ""}
	res := runCLI(t, f, env, fakeToken+"\n", "init", "-s", f.srv.URL, "--token-stdin")
	if res.code != 0 {
		t.Fatalf("init: %d %s", res.code, res.stderr)
	}
	if strings.Contains(res.stdout+res.stderr, fakeToken) {
		t.Errorf("init printed the token: %q %q", res.stdout, res.stderr)
	}
	fi, err := os.Stat(cfg)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode: %v %v", fi.Mode(), err)
	}
	var saved map[string]any
	data, _ := os.ReadFile(cfg)
	if err := json.Unmarshal(data, &saved); err != nil || saved["port"] != 4000.0 || saved["token"] != fakeToken || saved["serverUrl"] != f.srv.URL {
		t.Errorf("config: %s (%v)", data, err)
	}
	// A token the server refuses is not saved.
	res = runCLI(t, f, env, "", "init", "-s", f.srv.URL, "-t", "kod_bad")
	if res.code != 1 || !strings.Contains(res.stderr, "nothing saved") {
		t.Errorf("init with a bad token: %d %q", res.code, res.stderr)
	}
	// config alone works; env overrides it; a flag overrides env.
	if res := runCLI(t, f, env, "", "repo", "list"); res.code != 0 {
		t.Errorf("from config: %d %s", res.code, res.stderr)
	}
	env["KOD_API_TOKEN"] = "kod_envTokenIsWrong"
	if res := runCLI(t, f, env, "", "repo", "list"); res.code != 1 {
		t.Errorf("env must win over config: %d", res.code)
	}
	if res := runCLI(t, f, env, "", "-t", fakeToken, "repo", "list"); res.code != 0 {
		t.Errorf("flag must win over env: %d %s", res.code, res.stderr)
	}
	env["KOD_SERVER_URL"] = "http://127.0.0.1:1"
	if res := runCLI(t, f, env, "", "repo", "list", "-s", f.srv.URL, "-t", fakeToken); res.code != 0 {
		t.Errorf("-s must win over KOD_SERVER_URL: %d %s", res.code, res.stderr)
	}
}

// TestRepoNameCompletion: `kod repo <TAB>` offers the repositories (and
// cobra the subcommands), `kod repo NAME <TAB>` the commands on it, and
// `kod repo NAME secret <TAB>` theirs (it offered nothing).
func TestRepoNameCompletion(t *testing.T) {
	f := newFakeAPI(t)
	for _, c := range []struct {
		args      []string
		want      []string
		wantNever string
	}{
		{[]string{"repo", ""}, []string{"app\n", "list\t", "create\t"}, ""},
		{[]string{"repo", "ap"}, []string{"app\n"}, "list"},
		{[]string{"repo", "app", ""}, []string{"collaborator\t", "secret\t", "webhook\t", "protect\t"}, "app\n"},
		{[]string{"repo", "app", "se"}, []string{"secret\t"}, "webhook"},
		{[]string{"repo", "--json", "app", "secret", ""}, []string{"list\t", "set\t"}, "collaborator"},
	} {
		res := runCLI(t, f, nil, "", append([]string{"__complete"}, c.args...)...)
		for _, w := range c.want {
			if !strings.Contains(res.stdout, w) {
				t.Errorf("complete %q: %q lacks %q", c.args, res.stdout, w)
			}
		}
		if c.wantNever != "" && strings.Contains(res.stdout, c.wantNever) {
			t.Errorf("complete %q: %q offers %q", c.args, res.stdout, c.wantNever)
		}
	}
}

// TestCompletion: repository arguments complete from the server.
func TestCompletion(t *testing.T) {
	f := newFakeAPI(t)
	res := runCLI(t, f, nil, "", "__complete", "workflow", "trigger", "a")
	if res.code != 0 || !strings.HasPrefix(res.stdout, "app\n:4\n") {
		t.Errorf("completion: %d %q %q", res.code, res.stdout, res.stderr)
	}
	res = runCLI(t, f, nil, "", "__complete", "repo", "info", "")
	if !strings.HasPrefix(res.stdout, "app\ndocs\n") {
		t.Errorf("completion: %q", res.stdout)
	}
}

// TestCLIRefusesWhatTheAPIRefuses: newcomer findings. `repo delete` without
// a terminal needs --yes (nothing is deleted otherwise); `token create
// --expires 0` is refused as the API refuses expiresInDays 0, instead of
// creating a token that never expires; `keys add` by a token without a
// username names the --username flag, not the API's "username" field.
func TestCLIRefusesWhatTheAPIRefuses(t *testing.T) {
	f := newFakeAPI(t)
	res := runCLI(t, f, nil, "", "repo", "delete", "docs")
	if res.code != 1 || !strings.Contains(res.stderr, "pass --yes") || f.called("DELETE /repos/docs") {
		t.Errorf("repo delete without --yes and without a terminal: exit %d, %q, calls %q", res.code, res.stderr, f.calls)
	}
	for _, days := range []string{"0", "-3", "366"} {
		res = runCLI(t, f, nil, "", "token", "create", "ci", "--expires", days)
		if res.code != 1 || !strings.Contains(res.stderr, "--expires must be between 1 and 365 days") || f.called("POST /tokens") {
			t.Errorf("--expires %s: exit %d, %q", days, res.code, res.stderr)
		}
	}
	res = runCLI(t, f, nil, "", "keys", "add", "ssh-ed25519 AAAAC3Nza admin-without-username")
	if res.code != 1 || !strings.Contains(res.stderr, "an admin token with --username NAME") || strings.Contains(res.stderr, `"username"`) {
		t.Errorf("keys add without a username: exit %d, %q", res.code, res.stderr)
	}
}
