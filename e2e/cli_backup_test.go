package e2e

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kod-forge/kod/client"
)

// TestCLIBackupRestore: a backup taken through the running server while a
// push is in progress restores, after the restore refusals, to a server
// that serves the same repositories (a clone that passes fsck at a commit
// the source had), tokens, secrets and runs, and runs workflows. With the
// server stopped, `kod backup` falls back to reading the directories.
func TestCLIBackupRestore(t *testing.T) {
	t.Parallel()
	env := []string{"KOD_ENCRYPTION_KEY=e2e-backup-key"}
	src := startServer(t, "", env)
	c := newCLI(t, src)
	c.ok("repo", "create", "app")
	p := newProject(t, "main", map[string]string{".kod/workflows/ci.toml": "[[steps]]\nname = \"hello\"\nrun = \"echo hello from $KOD_REPO; test -z \\\"$DEPLOY_TOKEN\\\" || echo secret is set\"\n"})
	before := strings.TrimSpace(p.git("rev-parse", "HEAD"))
	p.git("push", "-q", src.gitURL("app", adminToken), "main")
	runID := src.runs("app")[0].ID
	src.waitRun("app", runID, 2*time.Minute)
	var ci client.NewToken
	decodeJSON(t, c.ok("token", "create", "ci", "--json"), &ci)
	secrets := c.run("", "s3cret\n", "repo", "app", "secret", "set", "DEPLOY_TOKEN").Code == 0

	// A push of ~24 MB that is still running when the backup is taken.
	big := map[string]string{}
	for i := range 12 {
		big[fmt.Sprintf("blob%02d.bin", i)] = randomText(t, 2<<20)
	}
	after := p.commit("big", big)
	pushed := make(chan error, 1)
	go func() {
		out, err := p.gitErr("push", "-q", src.gitURL("app", adminToken), "main")
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		pushed <- err
	}()
	waitQuarantine(t, filepath.Join(src.Home, "repos", "app.git"), pushed)
	archive := filepath.Join(c.Home, "kod.tar.gz")
	if out := c.ok("backup", "-o", archive); !strings.Contains(out, "online from "+src.URL) {
		t.Errorf("backup: %q", out)
	}
	if err := <-pushed; err != nil {
		t.Fatalf("the push during the backup failed: %v", err)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive: %v %v", fi, err)
	}
	c.fails("exists: choose another name", "backup", "-o", archive)

	// Refusals: the running server's own directories; then content.
	dst := t.TempDir()
	dirs := func(home string) []string {
		return []string{"--data-dir", filepath.Join(home, "data"), "--repos-dir", filepath.Join(home, "repos"), "--ssh-host-key", filepath.Join(home, "ssh_host_ed25519_key")}
	}
	c.fails("stop the server before restoring", append([]string{"restore", archive, "--force"}, dirs(src.Home)...)...)
	c.ok(append([]string{"restore", archive}, dirs(dst)...)...)
	c.fails("pass --force to replace it", append([]string{"restore", archive}, dirs(dst)...)...)
	c.ok(append([]string{"restore", archive, "--force"}, dirs(dst)...)...)

	restored := startServer(t, dst, env)
	rc := newCLI(t, restored)
	var repos []client.Repo
	decodeJSON(t, rc.ok("repo", "list", "--json"), &repos)
	if len(repos) != 1 || repos[0].Name != "app" {
		t.Fatalf("restored repos: %+v", repos)
	}
	if out := rc.ok("token", "list"); !strings.Contains(out, ci.ID) {
		t.Errorf("restored tokens lack ci:\n%s", out)
	}
	rc.ok("-t", ci.Token, "repo", "list")
	var runs []client.Run
	decodeJSON(t, rc.ok("workflow", "status", "app", "--json"), &runs)
	if len(runs) == 0 || runs[len(runs)-1].ID != runID || !strings.Contains(rc.ok("workflow", "logs", "app", runID), "hello from app") {
		t.Errorf("restored runs: %+v", runs)
	}
	if secrets && !strings.Contains(rc.ok("repo", "app", "secret", "list"), "DEPLOY_TOKEN") {
		t.Errorf("the secret was not restored")
	}

	clone := &project{t: t, Dir: t.TempDir()}
	clone.git("clone", "-q", restored.gitURL("app", adminToken), ".")
	clone.git("fsck", "--strict", "--no-dangling")
	head := strings.TrimSpace(clone.git("rev-parse", "HEAD"))
	if head != before && head != after {
		t.Fatalf("restored main is %s: neither %s (before the push) nor %s (after)", head, before, after)
	}
	t.Logf("the backup holds main at the commit %s the push", map[bool]string{true: "before", false: "after"}[head == before])

	// The restored server runs workflows (with the restored secret).
	res := rc.run("", "", "workflow", "trigger", "app", "--follow")
	if res.Code != 0 || !strings.Contains(res.Stdout, "hello from app") || secrets && !strings.Contains(res.Stdout, "secret is set") {
		t.Errorf("run on the restored server: %+v", res)
	}

	// Offline: with the source stopped, backup reads its directories.
	src.Stop()
	offline := filepath.Join(c.Home, "offline.tar.gz")
	res = c.run("", "", append([]string{"backup", "-o", offline}, dirs(src.Home)...)...)
	if res.Code != 0 || !strings.Contains(res.Stdout, "(offline)") || !strings.Contains(res.Stderr, "No server answers") {
		t.Fatalf("offline backup: %+v", res)
	}
	c.ok(append([]string{"restore", offline}, dirs(t.TempDir())...)...)
}

// randomText returns n bytes of incompressible printable text.
func randomText(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	for i := range b {
		b[i] = alphabet[b[i]%64]
	}
	return string(b)
}

// waitQuarantine waits until receive-pack is receiving into the
// repository (its objects/tmp_objdir-incoming-* quarantine exists), so what follows
// happens during the push.
func waitQuarantine(t *testing.T, repo string, pushed chan error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute) // catches hangs only: packing 24 MB took over a minute at load 40
	for {
		if m, _ := filepath.Glob(filepath.Join(repo, "objects", "*incoming-*")); len(m) > 0 {
			return
		}
		select {
		case err := <-pushed:
			t.Fatalf("the push ended before it could be caught in progress: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the push never started receiving")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRestoredWebhooksPausedUntilResumed: a server restored from a backup
// does not deliver to the original's receivers (nothing is recorded or
// sent, and restore says so) until an admin resumes deliveries; after
// POST /admin/webhooks/resume it delivers again.
func TestRestoredWebhooksPausedUntilResumed(t *testing.T) {
	t.Parallel()
	env := []string{"KOD_WEBHOOK_ALLOWED_HOSTS=loopback"}
	src := startServer(t, "", env)
	c := newCLI(t, src)
	src.createRepo("hooked")
	rcv := newHookReceiver(t, "", nil)
	hook := src.createWebhook("hooked", rcv.URL, "", "push")
	src.Stop()
	archive := filepath.Join(c.Home, "kod.tar.gz")
	dirs := func(home string) []string {
		return []string{"--data-dir", filepath.Join(home, "data"), "--repos-dir", filepath.Join(home, "repos"), "--ssh-host-key", filepath.Join(home, "ssh_host_ed25519_key")}
	}
	c.ok(append([]string{"backup", "-o", archive}, dirs(src.Home)...)...)
	dst := t.TempDir()
	if out := c.ok(append([]string{"restore", archive}, dirs(dst)...)...); !strings.Contains(out, "Webhook deliveries are paused") || !strings.Contains(out, "--resume-webhooks") {
		t.Errorf("restore does not say the webhooks are paused:\n%s", out)
	}

	restored := startServer(t, dst, env)
	if !strings.Contains(restored.Logs(), "webhook deliveries are paused") {
		t.Errorf("the restored server does not warn that webhooks are paused:\n%s", restored.Logs())
	}
	p := newProject(t, "main", map[string]string{"README.md": "x\n"})
	p.git("push", "-q", restored.gitURL("hooked", adminToken), "main")
	time.Sleep(3 * time.Second) // three pick-up ticks: nothing may go
	if n := len(rcv.requests()); n != 0 {
		t.Fatalf("the restored server delivered %d requests to the original's receiver while paused", n)
	}
	if ds := restored.deliveries("hooked", hook); len(ds) != 0 {
		t.Errorf("deliveries recorded while paused: %+v", ds)
	}
	var resumed map[string]bool
	restored.mustDo("POST", "/admin/webhooks/resume", adminToken, nil, http.StatusOK, &resumed)
	if !resumed["wasPaused"] || resumed["paused"] {
		t.Errorf("resume: %v", resumed)
	}
	p.commit("second", map[string]string{"README.md": "y\n"})
	p.git("push", "-q", restored.gitURL("hooked", adminToken), "main")
	waitFor(t, 2*time.Minute, "a delivery after resuming", func() bool { return len(rcv.requests()) == 1 })
}
