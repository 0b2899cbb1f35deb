package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kod-forge/kod/forge"
)

// token stores a token with perms (and username, "" for a system token)
// and returns its secret.
func (e *env) token(perms []forge.Permission, username string) string {
	e.t.Helper()
	secret := forge.NewTokenSecret()
	tok := &forge.Token{ID: forge.NewID(), Name: "t", Hash: forge.HashToken(secret), CreatedAt: forge.NowMillis(), Permissions: perms, Username: username}
	if err := e.store.CreateToken(context.Background(), tok); err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// tokenID returns the id of the token with secret.
func (e *env) tokenID(secret string) string {
	e.t.Helper()
	tok, err := e.store.TokenByHash(context.Background(), forge.HashToken(secret))
	if err != nil {
		e.t.Fatal(err)
	}
	return tok.ID
}

// must sends a request and fails the test unless the status is want; it
// returns the body.
func (e *env) must(method, path, auth, body string, want int) string {
	e.t.Helper()
	code, got, _ := e.req(method, path, auth, body)
	if code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, code, got, want)
	}
	return got
}

// newRepo creates repository name owned by token tok.
func (e *env) newRepo(name, tok string) {
	e.t.Helper()
	e.must("POST", "/repos", bearer(tok), `{"name":"`+name+`"}`, 201)
}

// dir is the bare repository directory of name.
func (e *env) dir(name string) string { return filepath.Join(e.reposDir, name+".git") }

func basic(tok string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("someone:"+tok))
}

// errorOf returns the "error" of a JSON error body.
func errorOf(body string) string {
	var b struct{ Error string }
	_ = json.Unmarshal([]byte(body), &b)
	return b.Error
}

// git runs git in dir (no global or system config) and returns stdout.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@kod.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@kod.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// sourceRepo makes a bare repository outside the repos dir with a commit
// on main (holding files), one more commit on each of branches, and
// lightweight and annotated tags; HEAD names main.
func sourceRepo(t *testing.T, files map[string]string, branches ...string) string {
	t.Helper()
	work := t.TempDir()
	git(t, work, "init", "-q", "-b", "main")
	for name, content := range files {
		p := filepath.Join(work, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, work, "add", "-A")
	git(t, work, "commit", "-q", "--allow-empty", "-m", "first")
	git(t, work, "tag", "v1")
	git(t, work, "tag", "-a", "v1.1", "-m", "annotated")
	for _, b := range branches {
		git(t, work, "checkout", "-q", "-b", b, "main")
		git(t, work, "commit", "-q", "--allow-empty", "-m", "on "+b)
	}
	git(t, work, "checkout", "-q", "main")
	bare := filepath.Join(t.TempDir(), "source.git")
	git(t, work, "clone", "-q", "--bare", work, bare)
	return bare
}

// refs returns "<oid> <ref>" lines of every ref of the bare repository.
func refs(t *testing.T, bare string) string {
	t.Helper()
	return git(t, bare, "for-each-ref", "--format=%(objectname) %(refname)")
}

// fill fetches every branch and tag of src into the bare repository dst
// (plumbing, so no hooks run).
func fill(t *testing.T, dst, src string) {
	t.Helper()
	git(t, dst, "fetch", "-q", src, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
}

// readDirNames lists the entries of dir.
func readDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}
