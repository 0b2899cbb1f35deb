package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/sandbox/docker/dockertest"
	"github.com/kod-forge/kod/sandbox/faultpoint"
)

// mountExt4 mounts a fresh ext4 file system of sizeMiB in a loop device at
// dir for the test (ext4, unlike tmpfs, makes writes through open files
// fail once the file is immutable). Root only, like mountTmpfs.
func mountExt4(t *testing.T, dir string, sizeMiB int) {
	t.Helper()
	mountTmpfs(t, filepath.Join(t.TempDir(), "probe"), "1m") // the root check
	img := filepath.Join(t.TempDir(), "data.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(sizeMiB)<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount -o loop: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
}

func chattr(t *testing.T, flag, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", flag, path).CombinedOutput(); err != nil {
		t.Fatalf("chattr %s %s: %v %s", flag, path, err, out)
	}
}

// TestDatabaseUnwritableForAMoment: the bbolt file refuses writes (made
// immutable) while a run's step has just ended. Requests that write get
// an error and change nothing (no run queued half-way), reads keep
// working, the run's end is stored once the file takes writes again, and
// after a restart the database holds exactly that.
func TestDatabaseUnwritableForAMoment(t *testing.T) {
	t.Parallel()
	bin := faultKod(t)
	c := newController(t)
	home := t.TempDir()
	data := filepath.Join(home, "data")
	mountExt4(t, data, 32)
	dockertest.Require(t)
	s := &server{t: t, Home: home, env: []string{faultpoint.SocketEnv + "=" + c.path}, bin: bin}
	s.start()
	t.Cleanup(s.Stop)
	s.createRepo("db")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": `[on]
push = []
[[steps]]
name = "build"
run = "echo built"
`})
	p.git("push", "-q", s.gitURL("db", adminToken), "main")
	trigger := func(want int) string {
		var out struct{ ID string }
		status, body := s.do("POST", "/repos/db/workflows", adminToken, map[string]string{"branch": "main"})
		if status != want {
			t.Fatalf("trigger: %d %s, want %d", status, body, want)
		}
		if want == http.StatusAccepted {
			if err := json.Unmarshal(body, &out); err != nil {
				t.Fatal(err)
			}
		}
		return out.ID
	}

	c.armAt(faultpoint.OutputDrained, false)
	id := trigger(http.StatusAccepted)
	h := c.wait(t, faultpoint.OutputDrained)
	db := filepath.Join(data, "kod.db")
	chattr(t, "+i", db)
	immutable := true
	defer func() {
		if immutable {
			exec.Command("chattr", "-i", db).Run()
		}
	}()
	h.reply <- "go"
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(s.Logs(), "storing the end of a run; trying again") {
		if time.Now().After(deadline) {
			t.Fatalf("the run's end was never refused:\n%s", s.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Reads work; a write is refused with a server error and leaves nothing.
	before := len(s.runs("db"))
	status, body := s.do("POST", "/repos/db/workflows", adminToken, map[string]string{"branch": "main"})
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), "cannot write its data right now") {
		t.Errorf("trigger while the database is unwritable: %d %s", status, body)
	}
	t.Logf("the user sees: %d %s", status, strings.TrimSpace(string(body)))
	if after := len(s.runs("db")); after != before {
		t.Errorf("a refused trigger changed the runs: %d -> %d", before, after)
	}

	chattr(t, "-i", db)
	immutable = false
	run := s.waitRun("db", id, time.Minute)
	if run.Status != forge.RunCompleted || len(run.Result.Steps) != 1 || !strings.Contains(run.Result.Steps[0].Output, "built") {
		t.Fatalf("run whose end was stored late: %s %q %+v", run.Status, run.Error, run.Result)
	}
	next := s.waitRun("db", trigger(http.StatusAccepted), time.Minute)
	if next.Status != forge.RunCompleted {
		t.Errorf("run after the database came back: %s %q", next.Status, next.Error)
	}
	s.Stop()
	s.Restart()
	runs := s.runs("db")
	if len(runs) != 2 || runs[0].ID != next.ID || runs[1].ID != id {
		t.Errorf("runs after a restart: %+v", runs)
	}
	for _, r := range runs {
		if r.Status != forge.RunCompleted {
			t.Errorf("run %s after a restart: %s", r.ID, r.Status)
		}
	}
	assertNoLeftovers(t, s)
}
