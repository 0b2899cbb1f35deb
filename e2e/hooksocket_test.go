package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
)

// TestHookSocketGoneDuringPush: the hook socket in the data dir vanishes
// behind the server's back. While it cannot be created again (its path is
// taken), a push is refused with a message saying why, and neither a ref
// nor a run is left half-way; once the path is free the next push creates
// the socket again, lands and queues its run; a plain deletion is repaired
// by the next push.
func TestHookSocketGoneDuringPush(t *testing.T) {
	t.Parallel()
	s := startServer(t, "", nil)
	s.createRepo("hooks")
	sock := filepath.Join(s.Home, "data", "hook.sock")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"s\"\nrun = \"echo pushed\"\n"})
	url := s.gitURL("hooks", adminToken)

	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sock, "taken"), 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := p.gitErr("push", url, "main")
	if err == nil || !strings.Contains(out, "kod: cannot reach the kod server") || !strings.Contains(out, "push refused") {
		t.Fatalf("push without a hook socket: err %v\n%s", err, out)
	}
	t.Logf("the pusher sees:\n%s", out)
	if refs := strings.TrimSpace(p.git("ls-remote", url)); refs != "" {
		t.Errorf("a refused push left refs: %s", refs)
	}
	if runs := s.runs("hooks"); len(runs) != 0 {
		t.Errorf("a refused push queued runs: %+v", runs)
	}

	if err := os.RemoveAll(sock); err != nil {
		t.Fatal(err)
	}
	out = p.git("push", url, "main")
	if !strings.Contains(out, "kod: queued workflow run") {
		t.Fatalf("push once the socket path was free:\n%s", out)
	}
	run := s.waitRun("hooks", s.onlyRun("hooks").ID, time.Minute)
	if run.Status != forge.RunCompleted {
		t.Errorf("run after the socket came back: %s %q", run.Status, run.Error)
	}

	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	p.commit("again", map[string]string{"f": "x"})
	if out := p.git("push", url, "main"); !strings.Contains(out, "kod: queued workflow run") {
		t.Errorf("push after the socket was deleted:\n%s", out)
	}
	if n := len(s.runs("hooks")); n != 2 {
		t.Errorf("%d runs, want 2", n)
	}
	if !strings.Contains(s.Logs(), "the hook socket was gone; listening on it again") {
		t.Errorf("the server did not say it made the socket again:\n%s", s.Logs())
	}
}
