package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/client"
)

// TestCLIReposAndTokens runs the repo and token commands of the built
// binary against the real server: tables against goldens, --json decoded,
// the server's refusals as exit 1 with its message, init, precedence,
// doctor and completion.
func TestCLIReposAndTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	c := newCLI(t, s)

	if out := c.ok("repo", "create", "app"); !strings.Contains(out, "Created repository app") {
		t.Errorf("create: %q", out)
	}
	c.fails("kod: Repository already exists", "repo", "create", "app")
	c.fails("kod: Name must be alphanumeric", "repo", "create", "bad.name")
	c.ok("repo", "create", "docs")
	var repos []client.Repo
	decodeJSON(t, c.ok("repo", "list", "--json"), &repos)
	if len(repos) != 2 || repos[0].Name != "app" || repos[1].Name != "docs" || repos[0].OwnerTokenID == "" {
		t.Fatalf("repo list --json: %+v", repos)
	}
	ids := map[string]string{repos[0].OwnerTokenID: "<admin-id>", s.URL: "<server>"}
	golden(t, "repo_list", normalise(c.ok("repo", "list"), ids))
	golden(t, "repo_info", normalise(c.ok("repo", "info", "app"), ids))

	var tok client.NewToken
	decodeJSON(t, c.ok("token", "create", "ci", "--permissions", "repo:read,workflow:read", "--expires", "30", "--json"), &tok)
	if tok.ID == "" || !strings.HasPrefix(tok.Token, "kod_") || *tok.ExpiresAt == 0 || len(tok.Permissions) != 2 {
		t.Fatalf("token create --json: %+v", tok)
	}
	ids[tok.ID] = "<ci-id>"
	golden(t, "token_list", normalise(c.ok("token", "list"), ids))
	if out := c.ok("-t", tok.Token, "repo", "list"); !strings.Contains(out, "docs") {
		t.Errorf("the new token lists: %q", out)
	}
	// Kod says "Admin permission required"; the permission check may answer first.
	if res := c.run("", "", "-t", tok.Token, "token", "list"); res.Code != 1 ||
		!strings.Contains(res.Stderr, "kod: Admin permission required") && !strings.Contains(res.Stderr, "kod: Permission denied") {
		t.Errorf("token list without admin: %+v", res)
	}
	c.fails("kod: Cannot delete your own token", "token", "delete", repos[0].OwnerTokenID)
	c.ok("token", "delete", tok.ID)
	res := c.fails("kod: Unauthorized", "-t", tok.Token, "repo", "list")
	if strings.Contains(res.Stderr, tok.Token) {
		t.Errorf("the token was printed: %q", res.Stderr)
	}

	c.ok("repo", "delete", "docs", "--yes")
	c.fails("kod: Repository not found", "repo", "info", "docs")

	// init: the config holds the server and token (0600), printed nowhere;
	// without KOD_* the commands then use it.
	delete(c.env, "KOD_API_TOKEN")
	delete(c.env, "KOD_SERVER_URL")
	res = c.run("", adminToken+"\n", "init", "-s", s.URL, "--token-stdin")
	if res.Code != 0 || strings.Contains(res.Stdout+res.Stderr, adminToken) {
		t.Fatalf("init: %+v", res)
	}
	cfg := filepath.Join(c.Home, ".kod", "config.json")
	if fi, err := os.Stat(cfg); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config: %v %v", fi, err)
	}
	if out := c.ok("repo", "list"); !strings.Contains(out, "app") {
		t.Errorf("repo list from the config: %q", out)
	}
	c.env["KOD_API_TOKEN"] = "kod_wrongwrongwrongwrongwrongwrong12"
	c.fails("kod: Unauthorized", "repo", "list")
	c.ok("-t", adminToken, "repo", "list")

	res = c.run("", "", "doctor")
	if res.Code != 1 || !strings.Contains(res.Stdout, "FAIL  auth") || !strings.Contains(res.Stdout, "OK    server") {
		t.Errorf("doctor with a refused token: %+v", res)
	}
	delete(c.env, "KOD_API_TOKEN")
	res = c.run("", "", "doctor", "--data-dir", filepath.Join(s.Home, "data"), "--repos-dir", filepath.Join(s.Home, "repos"))
	for _, want := range []string{"OK    git", "OK    docker       engine reachable, API", "OK    image", "OK    config", "OK    data dir", "OK    repos dir", "OK    server", "OK    auth"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("doctor lacks %q:\n%s", want, res.Stdout)
		}
	}
	if res.Code != 0 {
		t.Errorf("doctor: exit %d\n%s", res.Code, res.Stdout)
	}
	if out := c.ok("completion", "bash"); !strings.Contains(out, "__start_kod") {
		t.Errorf("completion bash: %.200q", out)
	}
}

func decodeJSON(t testing.TB, data string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(data), v); err != nil {
		t.Fatalf("decoding %q: %v", data, err)
	}
}

// TestCLIRepoScoped runs the repository-scoped commands (collaborators,
// protected branches, webhooks, secrets), import, rename and keys against
// the real server.
func TestCLIRepoScoped(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_ENCRYPTION_KEY=e2e-cli-key", "KOD_WEBHOOK_ALLOWED_HOSTS=*"})
	c := newCLI(t, s)
	c.ok("repo", "create", "app")
	t.Run("collaborators", func(t *testing.T) {
		c.ok("repo", "app", "collaborator", "add", "alice")
		c.ok("repo", "app", "collaborator", "add", "bob")
		c.fails("Collaborator already added", "repo", "app", "collaborator", "add", "alice")
		var list struct {
			Collaborators client.Collaborators `json:"collaborators"`
		}
		decodeJSON(t, c.ok("repo", "app", "collaborator", "list", "--json"), &list)
		if strings.Join(list.Collaborators.Usernames(), ",") != "alice,bob" {
			t.Errorf("collaborators: %+v", list)
		}
		c.ok("repo", "app", "collaborator", "remove", "bob")
		if out := c.ok("repo", "app", "collaborator", "list"); strings.Contains(out, "bob") || !strings.Contains(out, "alice") {
			t.Errorf("after remove: %q", out)
		}
	})
	t.Run("protections", func(t *testing.T) {
		c.ok("repo", "app", "protect", "main")
		c.ok("repo", "app", "protect", "release/1")
		if out := c.ok("repo", "app", "protected"); !strings.Contains(out, "main, release/1") {
			t.Errorf("protected: %q", out)
		}
		c.ok("repo", "app", "unprotect", "release/1")
		var b struct{ Branches []string }
		decodeJSON(t, c.ok("repo", "app", "protected", "--json"), &b)
		if strings.Join(b.Branches, ",") != "main" {
			t.Errorf("protected --json: %+v", b)
		}
	})
	t.Run("secrets", func(t *testing.T) {
		res := c.run("", "s3cret-value\n", "repo", "app", "secret", "set", "DEPLOY_TOKEN")
		if res.Code != 0 {
			t.Fatalf("secret set: %+v", res)
		}
		c.fails("valid environment variable name", "repo", "app", "secret", "set", "1BAD", "--value", "x")
		out := c.ok("repo", "app", "secret", "list")
		if !strings.Contains(out, "DEPLOY_TOKEN") || strings.Contains(out, "s3cret") {
			t.Errorf("secret list: %q", out)
		}
		c.ok("repo", "app", "secret", "delete", "DEPLOY_TOKEN")
	})
	t.Run("webhooks", func(t *testing.T) {
		res := c.run("", "", "repo", "app", "webhook", "add", "http://127.0.0.1:9/hook", "--events", "push,workflow", "--secret", "sig")
		if res.Code != 0 {
			t.Fatalf("webhook add: %+v", res)
		}
		var hooks []client.Webhook
		decodeJSON(t, c.ok("repo", "app", "webhook", "list", "--json"), &hooks)
		if len(hooks) != 1 || strings.Join(hooks[0].Events, ",") != "push,workflow" {
			t.Fatalf("webhooks: %+v", hooks)
		}
		c.fails("Webhook URL must use http or https", "repo", "app", "webhook", "add", "ftp://x")
		c.ok("repo", "app", "webhook", "deliveries", hooks[0].ID)
		c.ok("repo", "app", "webhook", "remove", hooks[0].ID)
	})
	t.Run("rename", func(t *testing.T) {
		c.ok("repo", "create", "old")
		res := c.run("", "", "repo", "update", "old", "name", "new")
		if res.Code != 0 {
			t.Fatalf("rename: %+v", res)
		}
		c.ok("repo", "info", "new")
		c.fails("already exists", "repo", "update", "new", "name", "app")
	})
	t.Run("import", func(t *testing.T) {
		p := newProject(t, "main", map[string]string{"README": "x\n"})
		res := c.run("", "", "repo", "import", p.Dir, "--name", "imported")
		if res.Code != 0 {
			t.Fatalf("import: %+v", res)
		}
		if out := c.ok("repo", "info", "imported"); !strings.Contains(out, "main") {
			t.Errorf("imported: %q", out)
		}
	})
	t.Run("keys", func(t *testing.T) {
		pub := sshKey(t)
		// Keys belong to known users: alice is made a collaborator first.
		if res := c.run("", "", "repo", "app", "collaborator", "add", "alice"); !strings.Contains(res.Stderr, "already added") {
		}
		res := c.run("", "", "keys", "add", pub, "--name", "laptop", "--username", "alice")
		if res.Code != 0 {
			t.Fatalf("keys add: %+v", res)
		}
		var keys []client.Key
		decodeJSON(t, c.ok("keys", "list", "--username", "alice", "--json"), &keys)
		if len(keys) != 1 || keys[0].Name != "laptop" || !strings.HasPrefix(keys[0].Fingerprint, "SHA256:") {
			t.Fatalf("keys: %+v", keys)
		}
		c.fails("SSH key already exists", "keys", "add", pub, "--username", "alice")
		c.ok("keys", "remove", keys[0].ID)
	})
}

// sshKey makes an ed25519 key with ssh-keygen and returns the .pub path.
func sshKey(t *testing.T) string {
	t.Helper()
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	return key + ".pub"
}
