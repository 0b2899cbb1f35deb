package e2e

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// TestGitOverHTTP covers clone and fetch with protocol v0 and v2, a gzip
// request body, a push to a repository that does not exist, a push with a
// read-only token, and a workflow file that does not parse.
func TestGitOverHTTP(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("code")
	p := newProject(t, "main", map[string]string{
		"README.md":                  "hello\n",
		".kod/workflows/broken.toml": "[[steps]]\nname = \"x\"\nrun = \"true\"\nimage = 5\n",
	})
	out := p.git("push", s.gitURL("code", adminToken), "main")
	if !strings.Contains(out, "warning: .kod/workflows/broken.toml:4") {
		t.Errorf("the push does not warn about the broken workflow:\n%s", out)
	}

	// The broken workflow queued a run that fails naming file and line.
	runs := s.runs("code")
	if len(runs) != 1 {
		t.Fatalf("runs: %+v", runs)
	}
	run := s.waitRun("code", runs[0].ID, time.Minute)
	if run.Status != forge.RunFailed || !strings.Contains(run.Error, ".kod/workflows/broken.toml:4") {
		t.Errorf("broken workflow run: %s %q", run.Status, run.Error)
	}
	if logs := s.logs("code", run.ID); !strings.Contains(logs, "==> run failed: invalid workflow: .kod/workflows/broken.toml:4") {
		t.Errorf("the log of a run that failed before any step does not say why: %q", logs)
	}

	head := strings.TrimSpace(p.git("rev-parse", "HEAD"))
	for _, version := range []string{"0", "2"} {
		dir := filepath.Join(t.TempDir(), "clone")
		out = p.git("-c", "protocol.version="+version, "clone", "-q", s.gitURL("code", adminToken), dir)
		got, err := os.ReadFile(filepath.Join(dir, "README.md"))
		if err != nil || string(got) != "hello\n" {
			t.Errorf("protocol v%s clone: %v %q %s", version, err, got, out)
		}
		c := &project{t: t, Dir: dir}
		if h := strings.TrimSpace(c.git("rev-parse", "HEAD")); h != head {
			t.Errorf("protocol v%s clone is at %s, want %s", version, h, head)
		}
	}

	// GET /repos/:name now shows the branch and the default branch.
	var detail struct {
		Branches      []string
		DefaultBranch *string
	}
	s.mustDo("GET", "/repos/code", adminToken, nil, http.StatusOK, &detail)
	if len(detail.Branches) != 1 || detail.Branches[0] != "main" || detail.DefaultBranch == nil || *detail.DefaultBranch != "main" {
		t.Errorf("detail: %+v", detail)
	}

	// A gzip-compressed upload-pack request is understood.
	var want bytes.Buffer
	want.WriteString("0032want " + head + "\n00000009done\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(want.Bytes())
	zw.Close()
	req, _ := http.NewRequest("POST", s.URL+"/repos/code.git/git-upload-pack", &gz)
	req.SetBasicAuth("git", adminToken)
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Content-Encoding", "gzip")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	pack, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Contains(pack, []byte("PACK")) || res.Header.Get("Content-Type") != "application/x-git-upload-pack-result" {
		t.Errorf("gzip upload-pack: %d %q... (%d bytes)", res.StatusCode, res.Header.Get("Content-Type"), len(pack))
	}

	// A push to a repository that does not exist fails clearly and creates nothing.
	out, err = p.gitErr("push", s.gitURL("nowhere", adminToken), "main")
	if err == nil || !strings.Contains(out, "not found") {
		t.Errorf("push to a missing repository: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(s.Home, "repos", "nowhere.git")); !os.IsNotExist(err) {
		t.Errorf("a push to a missing repository created it: %v", err)
	}

	// A token without repo:write cannot push; nothing changes.
	var tok struct{ Token string }
	s.mustDo("POST", "/tokens", adminToken, map[string]any{"name": "ro", "permissions": []string{"repo:read"}}, http.StatusCreated, &tok)
	{
		p.commit("second", map[string]string{"more.txt": "x"})
		out, err = p.gitErr("push", s.gitURL("code", tok.Token), "main")
		if err == nil || !strings.Contains(out, "403") {
			t.Errorf("read-only push: %v\n%s", err, out)
		}
		c := &project{t: t, Dir: t.TempDir()}
		c.git("clone", "-q", s.gitURL("code", tok.Token), ".")
		if h := strings.TrimSpace(c.git("rev-parse", "HEAD")); h != head {
			t.Errorf("refs changed by a refused push: %s", h)
		}
	}

	// A wrong password is refused with 401 so git asks for credentials.
	out, err = p.gitErr("clone", "-q", s.gitURL("code", "kod_wrong"), filepath.Join(t.TempDir(), "x"))
	if err == nil || !strings.Contains(out, "Authentication failed") {
		t.Errorf("clone with a wrong token: %v\n%s", err, out)
	}
}
