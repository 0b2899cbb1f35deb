package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// TestShadowRefsAndDefaultBranch, with the real git client: a collaborator
// cannot push a tag (or any ref outside refs/heads) named like a protected
// branch, which would make `main` ambiguous for everyone; a collaborator's
// first push to an empty repository does not choose its default branch,
// the owner's does, and PATCH {defaultBranch} changes it.
func TestShadowRefsAndDefaultBranch(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("shadow")
	s.mustDo("POST", "/repos/shadow/collaborators", adminToken, map[string]string{"username": "alice"}, http.StatusCreated, nil)
	s.mustDo("PUT", "/repos/shadow/protections/branches/main", adminToken, nil, http.StatusOK, nil)
	alice := s.token("alice", "alice", "repo:read", "repo:write")

	o := newProject(t, "main", map[string]string{"README": "v1\n"})
	o.git("push", "-q", s.gitURL("shadow", adminToken), "main")
	a := &project{t: t, Dir: t.TempDir()}
	a.git("clone", "-q", s.gitURL("shadow", alice), ".")
	a.git("checkout", "-q", "-b", "feature")
	a.commit("feature", map[string]string{"f": "f\n"})
	a.git("tag", "main")
	before := s.remoteRefs(a, "shadow")
	for _, ref := range []string{"refs/tags/main", "refs/remotes/main", "refs/heads/feature refs/tags/main"} {
		args := []string{"push", "origin"}
		for _, r := range strings.Fields(ref) {
			args = append(args, "HEAD:"+r)
		}
		out, err := a.gitErr(args...)
		if err == nil || !strings.Contains(out, "would shadow the protected branch 'main'") {
			t.Errorf("push of %s: not refused (%v):\n%s", ref, err, out)
		}
	}
	if after := s.remoteRefs(a, "shadow"); after != before {
		t.Errorf("refused pushes moved refs:\n%s\nwant:\n%s", after, before)
	}
	a.git("push", "-q", "origin", "refs/tags/main:refs/tags/v1", "feature")
	// With no shadowing tag, `git push origin HEAD:main` is unambiguous:
	// refused for alice as a protected branch, not as an ambiguous name.
	if out, _ := a.gitErr("push", "origin", "HEAD:main"); !strings.Contains(out, "branch 'main' is protected") {
		t.Errorf("push to main:\n%s", out)
	}

	// An empty repository: alice's first push leaves HEAD alone.
	s.createRepo("empty")
	s.mustDo("POST", "/repos/empty/collaborators", adminToken, map[string]string{"username": "alice"}, http.StatusCreated, nil)
	headOf := func() string {
		return strings.TrimSpace(a.git("ls-remote", "--symref", s.gitURL("empty", adminToken), "HEAD"))
	}
	out := a.git("push", s.gitURL("empty", alice), "feature")
	if !strings.Contains(out, "kod: the repository has no default branch yet") || headOf() != "" {
		t.Errorf("collaborator's first push: HEAD %q\n%s", headOf(), out)
	}
	out = o.git("push", s.gitURL("empty", adminToken), "main:develop")
	if !strings.Contains(out, "kod: default branch set to develop") || !strings.HasPrefix(headOf(), "ref: refs/heads/develop\tHEAD") {
		t.Errorf("owner's push: HEAD %q\n%s", headOf(), out)
	}
	s.mustDo("PATCH", "/repos/empty", adminToken, map[string]string{"defaultBranch": "feature"}, http.StatusOK, nil)
	if !strings.HasPrefix(headOf(), "ref: refs/heads/feature\tHEAD") {
		t.Errorf("after PATCH: HEAD %q", headOf())
	}
}

// TestOversizedWorkflowFile: one workflow file over 1 MiB fails its run
// naming the file (the push warns) instead of disabling CI for the push.
func TestOversizedWorkflowFile(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("big")
	p := newProject(t, "main", map[string]string{
		".kod/workflows/ci.toml":  "[[steps]]\nname = \"t\"\nrun = \"true\"\n",
		".kod/workflows/big.toml": "# " + strings.Repeat("x", 1<<20) + "\n",
	})
	out := p.git("push", s.gitURL("big", adminToken), "main")
	if !strings.Contains(out, "kod: warning: .kod/workflows/big.toml: file is 1048579 bytes; a workflow file may be at most 1048576 (the run will fail)") ||
		!strings.Contains(out, "queued workflow run") {
		t.Errorf("push output:\n%s", out)
	}
	run := s.waitRun("big", s.onlyRun("big").ID, time.Minute)
	if run.Status != forge.RunFailed || !strings.Contains(run.Error, ".kod/workflows/big.toml: file is 1048579 bytes") {
		t.Errorf("run: %s %q", run.Status, run.Error)
	}
	// The other file runs when asked for.
	var queued struct{ ID string }
	s.mustDo("POST", "/repos/big/workflows", adminToken, map[string]any{"files": []string{".kod/workflows/ci.toml"}}, http.StatusAccepted, &queued)
	if run := s.waitRun("big", queued.ID, time.Minute); run.Status != forge.RunCompleted {
		t.Errorf("run of ci.toml: %s %q", run.Status, run.Error)
	}
}
