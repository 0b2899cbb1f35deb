package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// mountTmpfs mounts a tmpfs of size (e.g. "32m") at dir for the test. It
// needs root (as the Docker tests do in CI); elsewhere the test is skipped,
// or fails when KOD_REQUIRE_DOCKER=1.
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if os.Getenv(dockertest.RequireEnv) == "1" {
			t.Fatalf("mounting a small file system for the data dir needs root (%s=1)", dockertest.RequireEnv)
		}
		t.Skip("mounting a small file system for the data dir needs root")
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "kodtest", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

// fill writes a file in dir that leaves about keep bytes free; removing it
// gives the space back.
func fill(t *testing.T, dir string, keep int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for left := free - keep; left > 0; left -= int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
			t.Fatalf("filling the data dir: %v", err)
		}
	}
	return path
}

// TestDiskFullWhileStepWritesLog: the data dir (database and logs) on a
// small file system fills up while a step prints megabytes. The step and
// the run fail with "no space left on device" in the step's error, the
// server keeps answering, and once the space is back the next run works
// and, after a restart, the database and the earlier records are intact.
func TestDiskFullWhileStepWritesLog(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	data := filepath.Join(home, "data")
	mountTmpfs(t, data, "32m")
	s := startServer(t, home, nil)
	s.createRepo("disk")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `[on]
push = []
[[steps]]
name = "chatty"
run = "echo begin; yes kod-line-of-output | head -c 8000000; echo; echo end"
`})
	p.git("push", "-q", s.gitURL("disk", adminToken), "main")
	trigger := func() string {
		var out struct{ ID string }
		s.mustDo("POST", "/repos/disk/workflows", adminToken, map[string]string{"branch": "main"}, http.StatusAccepted, &out)
		return out.ID
	}

	filler := fill(t, data, 1<<20)
	id := trigger()
	// While the disk is full the run's end cannot be stored: the server
	// says so, keeps answering, and stores it once there is space.
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(s.Logs(), "storing the end of a run; trying again") {
		if time.Now().After(deadline) {
			t.Fatalf("the step never hit the full disk:\n%s", s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	var during forge.Run
	s.mustDo("GET", "/repos/disk/workflows/"+id, adminToken, nil, http.StatusOK, &during)
	if during.Status.Done() {
		t.Errorf("a run whose end could not be stored reads as %s", during.Status)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	run := s.waitRun("disk", id, 2*time.Minute)
	if run.Status != forge.RunFailed || len(run.Result.Steps) != 1 || !strings.Contains(run.Result.Steps[0].Error, "no space left on device") {
		t.Fatalf("run on a full disk: %s %q %+v", run.Status, run.Error, run.Result)
	}
	t.Logf("the user sees: step %q: %s", run.Result.Steps[0].Name, run.Result.Steps[0].Error)
	if log := s.logs("disk", id); !strings.HasSuffix(log, "no space left on device\n") || !strings.Contains(log, "begin") {
		t.Errorf("the run's log does not end saying the disk is full:\n%.300s\n...\n%s", log, log[max(0, len(log)-300):])
	}
	assertNoLeftovers(t, s)

	next := s.waitRun("disk", trigger(), 2*time.Minute)
	if next.Status != forge.RunCompleted || !strings.Contains(next.Result.Steps[0].Output, "end") {
		t.Fatalf("run after the space came back: %s %q %+v", next.Status, next.Error, next.Result)
	}
	s.Stop()
	s.Restart()
	for _, r := range []forge.Run{run, next} {
		var got forge.Run
		s.mustDo("GET", "/repos/disk/workflows/"+r.ID, adminToken, nil, http.StatusOK, &got)
		if got.Status != r.Status || len(got.Result.Steps) != 1 {
			t.Errorf("run %s after a restart: %s %+v, was %s", r.ID, got.Status, got.Result, r.Status)
		}
	}
	if log := s.logs("disk", next.ID); !strings.Contains(log, "begin") || !strings.Contains(log, "end") {
		t.Errorf("log of the run after the space came back:\n%.500s", log)
	}
}
