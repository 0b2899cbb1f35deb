package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIClone: `kod clone` authenticates with the token without leaving
// it in .git/config, the remote URL or a credential store, even when the
// user's git config has a storing helper; later fetches get the token from
// `kod git-credential`.
func TestCLIClone(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	c := newCLI(t, s)
	c.ok("repo", "create", "app")
	p := newProject(t, "main", map[string]string{"README.md": "# app\n"})
	p.git("push", "-q", s.gitURL("app", adminToken), "main")
	// A user whose git stores every credential it is given.
	writeFile(t, filepath.Join(c.Home, ".gitconfig"), "[credential]\n\thelper = store\n")

	work := t.TempDir()
	res := c.run(work, "", "clone", "app")
	if res.Code != 0 {
		t.Fatalf("clone: %+v", res)
	}
	assertNoToken(t, filepath.Join(work, "app"), c.Home, adminToken)
	if got, _ := os.ReadFile(filepath.Join(work, "app", "README.md")); string(got) != "# app\n" {
		t.Errorf("cloned content: %q", got)
	}

	// A later pull asks kod for the token.
	head := p.commit("second", map[string]string{"more.txt": "x\n"})
	p.git("push", "-q", s.gitURL("app", adminToken), "main")
	clone := &project{t: t, Dir: filepath.Join(work, "app")}
	if out, err := gitIn(c, clone.Dir, "pull", "-q"); err != nil {
		t.Fatalf("pull through kod git-credential: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(clone.git("rev-parse", "HEAD")); got != head {
		t.Errorf("after pull HEAD is %s, want %s", got, head)
	}
	assertNoToken(t, clone.Dir, c.Home, adminToken)

	// -c TOKEN: that token, and no helper configured.
	var tok struct{ Token string }
	decodeJSON(t, c.ok("token", "create", "reader", "--permissions", "repo:read", "--json"), &tok)
	res = c.run(work, "", "clone", s.URL+"/repos/app.git", "byurl", "-c", tok.Token)
	if res.Code != 0 {
		t.Fatalf("clone -c: %+v", res)
	}
	assertNoToken(t, filepath.Join(work, "byurl"), c.Home, tok.Token)
	if cfg, _ := os.ReadFile(filepath.Join(work, "byurl", ".git", "config")); strings.Contains(string(cfg), "git-credential") {
		t.Errorf("clone -c configured the helper:\n%s", cfg)
	}

	c.env["KOD_API_TOKEN"] = "kod_wrongwrongwrongwrongwrongwrong12"
	if res := c.run(work, "", "clone", "app", "refused"); res.Code == 0 || !strings.Contains(res.Stderr, "Authentication failed") && !strings.Contains(res.Stderr, "401") {
		t.Errorf("clone with a refused token: %+v", res)
	}
	c.fails("neither a URL nor a repository name", "clone", "../etc")
}

// assertNoToken fails if token appears in any file of the clone's .git
// directory or in the user's credential store.
func assertNoToken(t *testing.T, clone, home, token string) {
	t.Helper()
	err := filepath.Walk(filepath.Join(clone, ".git"), func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(data), token) {
			t.Errorf("the token is in %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(home, ".git-credentials")); err == nil {
		t.Errorf("the credential store holds: %q", data)
	}
}

// gitIn runs git in dir with the CLI's environment (so the configured
// `kod git-credential` helper finds the server and token).
func gitIn(c *cli, dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = c.environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}
