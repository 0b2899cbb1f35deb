package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// badge GETs the badge of path (e.g. "/repos/r/badge.svg?branch=main")
// with token ("" = none) and returns the state it shows.
func (s *server) badge(t *testing.T, path, token string) string {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "image/svg+xml; charset=utf-8" ||
		!strings.HasPrefix(res.Header.Get("Cache-Control"), "no-cache") || !strings.HasPrefix(string(body), "<svg ") {
		t.Fatalf("GET %s: %d %v\n%s", path, res.StatusCode, res.Header, body)
	}
	for _, st := range []string{"passing", "failing", "running", "none"} {
		if strings.Contains(string(body), "build: "+st+"<") {
			return st
		}
	}
	t.Fatalf("GET %s: no state in\n%s", path, body)
	return ""
}

// TestBadgesAndCommitStatus: badges show passing, failing, running and
// none from real runs; an anonymous caller sees "none" (the same bytes)
// for a private and for a missing repository until the owner makes badges
// public; the commit status of a commit with a passing and a failing
// workflow file is failure, and a later run of only the passing file is
// picked for that file.
func TestBadgesAndCommitStatus(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("shown")
	p := newProject(t, "main", map[string]string{
		".kod/workflows/ok.toml":  "[[steps]]\nname = \"ok\"\nrun = \"true\"\n",
		".kod/workflows/bad.toml": "[[steps]]\nname = \"bad\"\nrun = \"exit 3\"\n",
	})
	url := s.gitURL("shown", adminToken)
	p.git("push", "-q", url, "main")
	mixed := strings.TrimSpace(p.git("rev-parse", "HEAD"))
	first := s.waitRun("shown", s.runs("shown")[0].ID, 2*time.Minute)
	if first.Status != forge.RunFailed {
		t.Fatalf("run of ok+bad: %s", first.Status)
	}

	// Commit status: failure, the run deciding both files.
	type status struct {
		SHA   string
		State string
		Runs  []struct {
			ID          string
			Status      string
			Files       []string
			CompletedAt int64
		}
	}
	var st status
	s.mustDo("GET", "/repos/shown/commits/"+mixed[:10]+"/status", adminToken, nil, http.StatusOK, &st)
	if st.SHA != mixed || st.State != "failure" || len(st.Runs) != 1 || st.Runs[0].ID != first.ID ||
		strings.Join(st.Runs[0].Files, ",") != ".kod/workflows/bad.toml,.kod/workflows/ok.toml" || st.Runs[0].CompletedAt == 0 {
		t.Errorf("status of the mixed commit: %+v", st)
	}
	var manual struct{ ID string }
	s.mustDo("POST", "/repos/shown/workflows", adminToken, map[string]any{"branch": "main", "files": []string{".kod/workflows/ok.toml"}}, http.StatusAccepted, &manual)
	if run := s.waitRun("shown", manual.ID, 2*time.Minute); run.Status != forge.RunCompleted {
		t.Fatalf("manual run of ok.toml: %s", run.Status)
	}
	s.mustDo("GET", "/repos/shown/commits/"+mixed+"/status", adminToken, nil, http.StatusOK, &st)
	if st.State != "failure" || len(st.Runs) != 2 || st.Runs[0].ID != manual.ID || strings.Join(st.Runs[0].Files, ",") != ".kod/workflows/ok.toml" ||
		st.Runs[1].ID != first.ID || strings.Join(st.Runs[1].Files, ",") != ".kod/workflows/bad.toml" {
		t.Errorf("status after a run of ok.toml alone: %+v", st)
	}
	for path, want := range map[string]int{
		"/repos/shown/commits/zzzz/status":                                     http.StatusBadRequest,
		"/repos/shown/commits/0000000000000000000000000000000000000000/status": http.StatusNotFound,
		"/repos/nope/commits/" + mixed + "/status":                             http.StatusNotFound,
	} {
		if code, body := s.do("GET", path, adminToken, nil); code != want {
			t.Errorf("GET %s: %d %s, want %d", path, code, body, want)
		}
	}
	if code, _ := s.do("GET", "/repos/shown/commits/"+mixed+"/status", "", nil); code != http.StatusUnauthorized {
		t.Errorf("commit status without a token: %d", code)
	}

	// Badges with a token: latest run on main (the manual one) passes; a
	// file's badge follows that file; a branch without runs shows none.
	if got := s.badge(t, "/repos/shown/badge.svg?branch=main", adminToken); got != "passing" {
		t.Errorf("main: %s", got)
	}
	if got := s.badge(t, "/repos/shown/badge.svg?branch=main&workflow=bad.toml", adminToken); got != "failing" {
		t.Errorf("main bad.toml: %s", got)
	}
	if got := s.badge(t, "/repos/shown/badge.svg", adminToken); got != "passing" {
		t.Errorf("default branch: %s", got)
	}
	if got := s.badge(t, "/repos/shown/badge.svg?branch=other", adminToken); got != "none" {
		t.Errorf("a branch without runs: %s", got)
	}
	p.commit("all good", map[string]string{".kod/workflows/bad.toml": "[[steps]]\nname = \"slow\"\nrun = \"sleep 600\"\n"})
	p.git("push", "-q", url, "main")
	slow := s.runs("shown")[0]
	waitFor(t, 2*time.Minute, "the slow run to start", func() bool {
		var r forge.Run
		s.mustDo("GET", "/repos/shown/workflows/"+slow.ID, adminToken, nil, http.StatusOK, &r)
		return r.Status == forge.RunRunning
	})
	if got := s.badge(t, "/repos/shown/badge.svg?branch=main", adminToken); got != "running" {
		t.Errorf("main while running: %s", got)
	}
	s.mustDo("GET", "/repos/shown/commits/"+slow.Commit+"/status", adminToken, nil, http.StatusOK, &st)
	if st.State != "pending" {
		t.Errorf("status of a running commit: %+v", st)
	}
	s.mustDo("POST", "/repos/shown/workflows/"+slow.ID+"/cancel", adminToken, nil, http.StatusAccepted, nil)
	s.waitRun("shown", slow.ID, 2*time.Minute)
	if got := s.badge(t, "/repos/shown/badge.svg?branch=main", adminToken); got != "failing" {
		t.Errorf("main after a cancelled run: %s", got)
	}

	// Anonymous and outsiders: none, byte for byte the same for a private
	// and a missing repository; a token without workflow:read
	// counts as anonymous.
	outsider := s.token("outsider", "", "repo:read") // no workflow:read
	raw := func(path string) string {
		res, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.Status + "\n" + string(b)
	}
	if a, b := raw("/repos/shown/badge.svg?branch=main"), raw("/repos/missing/badge.svg?branch=main"); a != b || !strings.Contains(a, "build: none<") {
		t.Errorf("private and missing differ for anonymous callers:\n%s\n%s", a, b)
	}
	if got := s.badge(t, "/repos/shown/badge.svg?branch=main", outsider); got != "none" {
		t.Errorf("outsider on a private repository: %s", got)
	}
	var detail map[string]any
	s.mustDo("PATCH", "/repos/shown", adminToken, map[string]any{"publicBadges": true}, http.StatusOK, &detail)
	if detail["publicBadges"] != true {
		t.Errorf("PATCH publicBadges: %v", detail)
	}
	if got := s.badge(t, "/repos/shown/badge.svg?branch=main", ""); got != "failing" {
		t.Errorf("anonymous on a public-badge repository: %s", got)
	}
	if code, body := s.do("PATCH", "/repos/shown", adminToken, `{"publicBadges":"yes"}`); code != http.StatusBadRequest {
		t.Errorf("PATCH publicBadges \"yes\": %d %s", code, body)
	}
	s.mustDo("PATCH", "/repos/shown", adminToken, map[string]any{"publicBadges": false}, http.StatusOK, nil)
	if got := s.badge(t, "/repos/shown/badge.svg?branch=main", ""); got != "none" {
		t.Errorf("anonymous after badges were made private again: %s", got)
	}
	var repoJSON json.RawMessage
	s.mustDo("GET", "/repos/shown", adminToken, nil, http.StatusOK, &repoJSON)
	if !strings.Contains(string(repoJSON), `"publicBadges":false`) {
		t.Errorf("GET /repos/shown: %s", repoJSON)
	}
	assertNoLeftovers(t, s)
}
