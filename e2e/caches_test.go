package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/kod-forge/kod/forge"
)

// cacheFiles are workflows sharing the cache "deps" at /cache: write.toml
// adds a file named after the branch, read.toml only lists, fail.toml
// writes a poisoned file and fails; big-*.toml fill caches of keys a, b, c
// with 150 KiB each.
var cacheFiles = map[string]string{
	".kod/workflows/write.toml": cacheWorkflow("deps", `echo "$KOD_BRANCH-data" > /cache/$KOD_BRANCH`),
	".kod/workflows/read.toml":  cacheWorkflow("deps", "true"),
	".kod/workflows/fail.toml":  cacheWorkflow("deps", "echo poison > /cache/poison; exit 1"),
	".kod/workflows/big-a.toml": cacheWorkflow("a", "dd if=/dev/zero of=/cache/f bs=1024 count=150 2>/dev/null"),
	".kod/workflows/big-b.toml": cacheWorkflow("b", "dd if=/dev/zero of=/cache/f bs=1024 count=150 2>/dev/null"),
	".kod/workflows/big-c.toml": cacheWorkflow("c", "dd if=/dev/zero of=/cache/f bs=1024 count=150 2>/dev/null"),
}

func cacheWorkflow(key, then string) string {
	return `
[on]
push = []

[[caches]]
path = "/cache"
key = "` + key + `"

[[steps]]
name = "use"
run = """
echo "seen: $(cat /cache/* 2>/dev/null | sort | tr '\n' ' ')"
` + then + `
"""
`
}

// triggerFile runs file on branch of repo and waits for the run's end.
func (s *server) triggerFile(repo, branch, file string) forge.Run {
	s.t.Helper()
	var q struct{ ID string }
	s.mustDo("POST", "/repos/"+repo+"/workflows", adminToken,
		map[string]any{"branch": branch, "files": []string{".kod/workflows/" + file}}, http.StatusAccepted, &q)
	return s.waitRun(repo, q.ID, 3*time.Minute)
}

// seen is what the step "use" of run found in the cache.
func seen(t *testing.T, run forge.Run) string {
	t.Helper()
	out := stepsByName(t, run)["use"].Output
	_, after, ok := strings.Cut(out, "seen: ")
	if !ok {
		t.Fatalf("run %s (%s): no 'seen:' line in %q", run.ID, run.Status, out)
	}
	line, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(line)
}

// TestCaches: a branch sees what its earlier successful runs wrote; a new
// branch starts from the default branch's cache and its writes never reach
// the default branch; a failed run changes nothing; caches survive a
// restart; another repository sees none; over KOD_CACHE_LIMIT the least
// recently used go; deleting one through the API empties it.
func TestCaches(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", []string{"KOD_CACHE_LIMIT=400k"})
	s.createRepo("cached")
	s.createRepo("other")
	p := newProject(t, "main", cacheFiles)
	p.git("push", "-q", s.gitURL("cached", adminToken), "main")
	p.git("push", "-q", s.gitURL("other", adminToken), "main")
	p.git("checkout", "-q", "-b", "feat")
	p.git("push", "-q", s.gitURL("cached", adminToken), "feat")

	step := func(branch, file, want string) forge.Run {
		t.Helper()
		run := s.triggerFile("cached", branch, file)
		if got := seen(t, run); got != want {
			t.Errorf("%s on %s saw %q, want %q", file, branch, got, want)
		}
		return run
	}
	if r := step("main", "write.toml", ""); r.Status != forge.RunCompleted {
		t.Fatalf("first run: %s %+v", r.Status, r.Result)
	}
	step("main", "read.toml", "main-data")
	step("feat", "write.toml", "main-data")
	step("feat", "read.toml", "feat-data main-data")
	step("main", "read.toml", "main-data")
	if r := step("main", "fail.toml", "main-data"); r.Status != forge.RunFailed {
		t.Errorf("fail.toml: %s", r.Status)
	}
	step("main", "read.toml", "main-data")
	if got := seen(t, s.triggerFile("other", "main", "read.toml")); got != "" {
		t.Errorf("another repository saw %q", got)
	}

	s.Stop()
	s.Restart()
	step("main", "read.toml", "main-data")
	step("feat", "read.toml", "feat-data main-data")

	var list []map[string]any
	s.mustDo("GET", "/repos/cached/caches", adminToken, nil, http.StatusOK, &list)
	keys := map[string]bool{}
	for _, c := range list {
		keys[c["branch"].(string)+"/"+c["key"].(string)] = true
		if c["size"].(float64) <= 0 || c["lastUsedAt"].(float64) < c["createdAt"].(float64) {
			t.Errorf("cache entry %v", c)
		}
	}
	if len(keys) != 2 || !keys["main/deps"] || !keys["feat/deps"] {
		t.Errorf("caches of the repository: %v", list)
	}

	// 150 KiB each against a 400 KiB limit: the third evicts the oldest.
	for _, f := range []string{"big-a.toml", "big-b.toml", "big-c.toml"} {
		if r := s.triggerFile("cached", "main", f); r.Status != forge.RunCompleted {
			t.Fatalf("%s: %s", f, r.Status)
		}
	}
	// A run's end is told before its caches are saved (the next run of
	// the branch waits for the save): wait for c's.
	have := map[string]bool{}
	for deadline := time.Now().Add(time.Minute); !have["c"] && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		s.mustDo("GET", "/repos/cached/caches", adminToken, nil, http.StatusOK, &list)
		clear(have)
		for _, c := range list {
			have[c["key"].(string)] = true
		}
	}
	if have["deps"] || have["a"] || !have["b"] || !have["c"] {
		data, _ := json.Marshal(list)
		t.Errorf("after filling 3 x 150 KiB under a 400 KiB limit: %s (want b and c, the least recently used gone)", data)
	}
	step("main", "read.toml", "") // deps was evicted

	s.mustDo("DELETE", "/repos/cached/caches/b?branch=main", adminToken, nil, http.StatusNoContent, nil)
	s.mustDo("DELETE", "/repos/cached/caches/b?branch=main", adminToken, nil, http.StatusNotFound, nil)
	s.mustDo("DELETE", "/repos/cached", adminToken, nil, http.StatusNoContent, nil)
	s.mustDo("DELETE", "/repos/other", adminToken, nil, http.StatusNoContent, nil)
	assertNoLeftovers(t, s)
	assertNoCacheLayers(t, s)
}

// assertNoCacheLayers fails unless every cache layer of the server's
// instance is gone.
func assertNoCacheLayers(t *testing.T, s *server) {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.VolumeList(t.Context(), volume.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "dev.kod.cache-instance="+s.Instance))})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range list.Volumes {
		t.Errorf("cache layer left: %s", v.Name)
	}
}
