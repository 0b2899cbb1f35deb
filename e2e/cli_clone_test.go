package e2e

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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

	// TestCloneWithTokenCanPushAfterwards: -c TOKEN clones with that token
	// and sets the clone up to ask kod for it again (kept in kod's config
	// file, never in the clone), so a later push works with it.
	var tok struct{ Token string }
	decodeJSON(t, c.ok("token", "create", "writer", "--permissions", "repo:read,repo:write", "--json"), &tok)
	res = c.run(work, "", "clone", s.URL+"/repos/app.git", "byurl", "-c", tok.Token)
	if res.Code != 0 {
		t.Fatalf("clone -c: %+v", res)
	}
	assertNoToken(t, filepath.Join(work, "byurl"), c.Home, tok.Token)
	byurl := &project{t: t, Dir: filepath.Join(work, "byurl")}
	pushed := byurl.commit("from the -c clone", map[string]string{"c.txt": "c\n"})
	c.env["KOD_API_TOKEN"] = "kod_wrongwrongwrongwrongwrongwrong12" // only the -c token can push
	if out, err := gitIn(c, byurl.Dir, "push", "-q", "origin", "HEAD:refs/heads/from-c"); err != nil {
		t.Fatalf("push from a clone made with -c: %v\n%s", err, out)
	}
	if at := s.headOf("app", "from-c"); at != pushed {
		t.Errorf("from-c is at %q, want %s", at, pushed)
	}
	assertNoToken(t, byurl.Dir, c.Home, tok.Token)

	if res := c.run(work, "", "clone", "app", "refused"); res.Code == 0 || !strings.Contains(res.Stderr, "Authentication failed") && !strings.Contains(res.Stderr, "401") {
		t.Errorf("clone with a refused token: %+v", res)
	}
	c.fails("neither a URL nor a repository name", "clone", "../etc")
}

// authRecorder is a fake git server on its own port: it answers every
// request 401 with a Basic challenge, as a server fishing for credentials
// would, and records the Authorization headers it got.
type authRecorder struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
	hits  int
}

func newAuthRecorder(t *testing.T) *authRecorder {
	r := &authRecorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.hits++
		if h := req.Header.Get("Authorization"); h != "" {
			r.auths = append(r.auths, h)
		}
		r.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="fake"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(r.Close)
	return r
}

// received returns the passwords of the Basic credentials received (and
// any other Authorization header as it came) and the number of requests,
// since the last call.
func (r *authRecorder) received() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { r.auths, r.hits = nil, 0 }()
	var out []string
	for _, h := range r.auths {
		if b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic ")); err == nil {
			_, pass, _ := strings.Cut(string(b), ":")
			h = pass
		}
		out = append(out, h)
	}
	return out, r.hits
}

// TestCLICloneSendsTheTokenOnlyToItsServer: `kod clone URL` of another
// host (another port of the same address here) never sends the configured
// token, not even when that host asks for credentials or the configured
// server redirects there; a token given with -c goes to the URL named.
func TestCLICloneSendsTheTokenOnlyToItsServer(t *testing.T) {
	t.Parallel()
	fake := newAuthRecorder(t)
	c := newCLI(t, nil)
	c.env["KOD_SERVER_URL"] = "http://127.0.0.1:1" // the configured server (unused here)
	work := t.TempDir()
	res := c.run(work, "", "clone", fake.URL+"/repos/app.git", "a")
	got, hits := fake.received()
	if res.Code == 0 || hits == 0 || len(got) != 0 || !strings.Contains(res.Stderr, "not sending the configured token to "+fake.URL) {
		t.Errorf("clone from another host: exit %d, %d requests, credentials %q, stderr %q", res.Code, hits, got, res.Stderr)
	}

	// The configured server redirects to the other host: the helper is
	// scoped to the server, so git has nothing to give the other host.
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fake.URL+r.URL.RequestURI(), http.StatusFound)
	}))
	defer redirect.Close()
	c.env["KOD_SERVER_URL"] = redirect.URL
	res = c.run(work, "", "clone", "app", "b")
	got, hits = fake.received()
	if res.Code == 0 || hits == 0 || len(got) != 0 {
		t.Errorf("clone redirected to another host: exit %d, %d requests, credentials %q, stderr %q", res.Code, hits, got, res.Stderr)
	}

	// -c TOKEN: the user chose to send it to this URL.
	chosen := "kod_chosenchosenchosenchosenchosen1"
	res = c.run(work, "", "clone", fake.URL+"/repos/app.git", "c", "-c", chosen)
	got, _ = fake.received()
	if res.Code == 0 || len(got) == 0 {
		t.Errorf("clone -c: exit %d, credentials %q, stderr %q", res.Code, got, res.Stderr)
	}
	for _, pass := range got {
		if pass != chosen {
			t.Errorf("clone -c sent %q", pass)
		}
	}
	for _, dir := range []string{"a", "b", "c"} {
		if _, err := os.Stat(filepath.Join(work, dir)); err == nil {
			t.Errorf("a failed clone left %s", dir)
		}
	}
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
