package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// token creates a token over REST and returns its secret.
func (s *server) token(name, username string, perms ...string) string {
	s.t.Helper()
	body := map[string]any{"name": name, "permissions": perms}
	if username != "" {
		body["username"] = username
	}
	var tok struct{ Token string }
	s.mustDo("POST", "/tokens", adminToken, body, http.StatusCreated, &tok)
	return tok.Token
}

// remoteRefs lists the refs of repo as the server has them ("<oid> <ref>").
func (s *server) remoteRefs(p *project, repo string) string {
	s.t.Helper()
	return strings.TrimSpace(p.git("ls-remote", "--heads", "--tags", s.gitURL(repo, adminToken)))
}

// TestProtectedBranchesOverHTTP pushes with the real git client: a
// collaborator can clone and push other branches, but every change to a
// protected branch (update, force-push, deletion, creation, and a push
// that mixes it with an allowed branch) is refused as a whole with
// "branch '<b>' is protected" and no ref moves; the owner and an admin may
// change it; a username-linked token that is not a collaborator gets 403.
// The protection, collaborators and hooks follow a rename, and an imported
// repository runs the same hooks.
func TestProtectedBranchesOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	owner := s.token("owner", "", "repo:read", "repo:write", "collaborator:write")
	s.mustDo("POST", "/repos", owner, map[string]string{"name": "prot"}, http.StatusCreated, nil)
	s.mustDo("POST", "/repos/prot/collaborators", owner, map[string]string{"username": "alice"}, http.StatusCreated, nil)
	s.mustDo("PUT", "/repos/prot/protections/branches/main", owner, nil, http.StatusOK, nil)
	s.mustDo("PUT", "/repos/prot/protections/branches/release", owner, nil, http.StatusOK, nil)
	// bob must be known to get a token: he collaborates elsewhere.
	s.createRepo("elsewhere")
	s.mustDo("POST", "/repos/elsewhere/collaborators", adminToken, map[string]string{"username": "bob"}, http.StatusCreated, nil)
	alice := s.token("alice", "alice", "repo:read", "repo:write")
	bob := s.token("bob", "bob", "repo:read", "repo:write")

	// The owner creates the protected main.
	o := newProject(t, "main", map[string]string{"README": "v1\n"})
	first := strings.TrimSpace(o.git("rev-parse", "HEAD"))
	o.git("push", "-q", s.gitURL("prot", owner), "main")
	o.commit("second", map[string]string{"README": "v2\n"})
	o.git("push", "-q", s.gitURL("prot", owner), "main")

	a := &project{t: t, Dir: t.TempDir()}
	a.git("clone", "-q", s.gitURL("prot", alice), ".")
	a.git("checkout", "-q", "-b", "feature")
	a.commit("feature work", map[string]string{"f.txt": "f\n"})
	a.git("push", "-q", "origin", "feature")
	before := s.remoteRefs(a, "prot")
	if !strings.Contains(before, "refs/heads/feature") {
		t.Fatalf("collaborator push of an unprotected branch did not land:\n%s", before)
	}

	refused := func(what string, args ...string) {
		t.Helper()
		out, err := a.gitErr(append([]string{"push"}, args...)...)
		if err == nil || !strings.Contains(out, "is protected") {
			t.Errorf("%s: not refused (%v):\n%s", what, err, out)
		}
		if after := s.remoteRefs(a, "prot"); after != before {
			t.Errorf("%s moved refs:\n%s\nwant:\n%s", what, after, before)
		}
	}
	a.git("checkout", "-q", "main")
	a.commit("on main", map[string]string{"README": "alice\n"})
	out, _ := a.gitErr("push", "origin", "main")
	if !strings.Contains(out, "branch 'main' is protected") {
		t.Errorf("push to main: message missing:\n%s", out)
	}
	refused("update of main", "origin", "main")
	refused("force-push of main", "--force", "origin", first+":refs/heads/main")
	refused("deletion of main", "origin", ":main")
	refused("creation of a protected branch", "origin", "HEAD:refs/heads/release")
	a.git("checkout", "-q", "feature")
	a.commit("more feature", map[string]string{"g.txt": "g\n"})
	refused("feature and main in one push", "origin", "feature", "main")
	refused("atomic push", "--atomic", "origin", "feature", "main")

	// The owner and an admin may change protected branches.
	o.commit("third", map[string]string{"README": "v3\n"})
	o.git("push", "-q", s.gitURL("prot", owner), "main")
	o.git("push", "-q", "--force", s.gitURL("prot", adminToken), first+":refs/heads/main")
	o.git("push", "-q", s.gitURL("prot", adminToken), "main:release")
	o.git("push", "-q", s.gitURL("prot", adminToken), ":release")
	if refs := s.remoteRefs(o, "prot"); !strings.Contains(refs, first+"\trefs/heads/main") || strings.Contains(refs, "release") {
		t.Errorf("owner/admin pushes did not land:\n%s", refs)
	}

	// A username-linked token that is not a collaborator cannot even clone.
	out, err := o.gitErr("clone", "-q", s.gitURL("prot", bob), filepath.Join(t.TempDir(), "bob"))
	if err == nil || !strings.Contains(out, "403") {
		t.Errorf("non-collaborator clone: %v\n%s", err, out)
	}

	// After a rename the protection and the collaborator follow.
	s.mustDo("PATCH", "/repos/prot", owner, map[string]string{"name": "prot2"}, http.StatusOK, nil)
	a.git("remote", "set-url", "origin", s.gitURL("prot2", alice))
	a.git("push", "-q", "origin", "feature")
	if out, err := a.gitErr("push", "origin", "main"); err == nil || !strings.Contains(out, "branch 'main' is protected") {
		t.Errorf("push to main after the rename: %v\n%s", err, out)
	}

	// An imported repository runs the hooks: its protected main is guarded.
	s.mustDo("POST", "/repos/import", adminToken, map[string]string{"source": filepath.Join(s.Home, "repos", "prot2.git"), "name": "copy"}, http.StatusCreated, nil)
	s.mustDo("POST", "/repos/copy/collaborators", adminToken, map[string]string{"username": "alice"}, http.StatusCreated, nil)
	s.mustDo("PUT", "/repos/copy/protections/branches/main", adminToken, nil, http.StatusOK, nil)
	a.git("checkout", "-q", "main")
	if out, err := a.gitErr("push", s.gitURL("copy", alice), "main"); err == nil || !strings.Contains(out, "branch 'main' is protected") {
		t.Errorf("push to the imported repository's main: %v\n%s", err, out)
	}
	a.git("push", "-q", s.gitURL("copy", alice), "feature")
}
