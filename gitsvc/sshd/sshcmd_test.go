package sshd_test

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/gitsvc/sshd"
)

// fakeGit is a git binary that records its arguments and environment.
func fakeGit(t *testing.T) (*gitsvc.Git, string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nenv > " + filepath.Join(dir, "env") + "\nprintf '%s\\n' \"$@\" > " + filepath.Join(dir, "args") + "\n"
	bin := filepath.Join(dir, "git")
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return &gitsvc.Git{Bin: bin}, dir
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestClientEnvironmentDoesNotReachGit: of everything a client sends as
// environment, only a well-formed GIT_PROTOCOL reaches the git process.
func TestClientEnvironmentDoesNotReachGit(t *testing.T) {
	t.Parallel()
	git, dir := fakeGit(t)
	e := newSSHEnv(t, git, nil)
	e.repo("r", "alice")
	key, _ := e.newKey("alice")
	c, err := e.dial("kod", gossh.PublicKeys(key))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hostile := []string{"LD_PRELOAD=/tmp/x.so", "GIT_CONFIG_COUNT=1", "GIT_CONFIG_KEY_0=core.hooksPath", "GIT_CONFIG_VALUE_0=/tmp", "GIT_DIR=/etc", "PATH=/tmp", "KOD_HOOK_TOKEN=forged"}
	cases := []struct {
		name, cmd, protocol, wantProtocol string
		wantArgs                          []string
	}{
		{"upload-pack v2", "git-upload-pack '/r.git'", "version=2", "GIT_PROTOCOL=version=2", []string{"upload-pack", "--strict"}},
		{"receive-pack", "git-receive-pack 'r.git'", "version=1", "GIT_PROTOCOL=version=1", []string{"receive-pack"}},
		{"upload-archive, malformed protocol", "git upload-archive 'repos/r.git'", "version=2;rm -rf", "", []string{"upload-archive"}},
	}
	for _, tc := range cases {
		env := append([]string{"GIT_PROTOCOL=" + tc.protocol}, hostile...)
		if _, stderr, code := run(t, c, tc.cmd, env...); code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr)
		}
		got := readLines(t, filepath.Join(dir, "env"))
		for _, kv := range got {
			name, _, _ := strings.Cut(kv, "=")
			if strings.HasPrefix(name, "LD_") || strings.HasPrefix(name, "GIT_CONFIG_") && name != "GIT_CONFIG_NOSYSTEM" && name != "GIT_CONFIG_GLOBAL" || name == "GIT_DIR" || kv == "PATH=/tmp" || kv == "KOD_HOOK_TOKEN=forged" {
				t.Errorf("%s: client environment reached git: %s", tc.name, kv)
			}
			if name == "GIT_PROTOCOL" && kv != tc.wantProtocol {
				t.Errorf("%s: %s, want %q", tc.name, kv, tc.wantProtocol)
			}
		}
		if tc.wantProtocol != "" && !strings.Contains(strings.Join(got, "\n"), tc.wantProtocol) {
			t.Errorf("%s: GIT_PROTOCOL not passed on: %v", tc.name, got)
		}
		for _, want := range []string{"GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C"} {
			if !strings.Contains(strings.Join(got, "\n"), want) {
				t.Errorf("%s: safe base environment missing %s", tc.name, want)
			}
		}
		args := readLines(t, filepath.Join(dir, "args"))
		repoDir, _ := gitsvc.RepoPath(e.reposDir, "r")
		want := append(tc.wantArgs, repoDir)
		if strings.Join(args, " ") != strings.Join(want, " ") {
			t.Errorf("%s: git %v, want %v", tc.name, args, want)
		}
	}
	if len(e.pushes.pushes) != 1 || e.pushes.pushes[0].Transport != "ssh" || e.pushes.pushes[0].Principal.Username != "alice" {
		t.Errorf("pushes registered with the hook server: %+v", e.pushes.pushes)
	}
}

// TestRemovedKeyStopsAtOnce: removing a key refuses the next command on a
// connection that is already open, and new connections.
func TestRemovedKeyStopsAtOnce(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, &gitsvc.Git{}, nil)
	e.repo("r", "alice")
	signer, key := e.newKey("alice")
	c, err := e.dial("kod", gossh.PublicKeys(signer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if out, _, code := run(t, c, "repos"); code != 0 || out != "r\n" {
		t.Fatalf("before removal: %d %q", code, out)
	}
	if err := e.store.DeleteKey(context.Background(), key.ID); err != nil {
		t.Fatal(err)
	}
	if out, stderr, code := run(t, c, "repos"); code != 1 || out != "" || !strings.Contains(stderr, "not registered") {
		t.Errorf("open connection after removal: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, err := e.dial("kod", gossh.PublicKeys(signer)); err == nil {
		t.Error("a removed key still signs in")
	}
}

// TestAnonymousRead: without a key only as anonymous/anon, only when
// enabled, and never for a push.
func TestAnonymousRead(t *testing.T) {
	t.Parallel()
	off := newSSHEnv(t, &gitsvc.Git{}, nil)
	if _, err := off.dial("anonymous"); err == nil {
		t.Error("anonymous signed in with anonymous read off")
	}
	on := newSSHEnv(t, &gitsvc.Git{}, func(c *sshd.Config) { c.AnonymousRead = true })
	on.repo("a", "alice")
	on.repo("b")
	if _, err := on.dial("alice"); err == nil {
		t.Error("a named user signed in without a key")
	}
	for _, user := range []string{"anonymous", "anon"} {
		c, err := on.dial(user)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if out, _, code := run(t, c, "ls"); code != 0 || out != "a\nb\n" {
			t.Errorf("%s repos: %d %q", user, code, out)
		}
		if _, stderr, code := run(t, c, "git-receive-pack 'a.git'"); code != 1 || !strings.Contains(stderr, "anonymous access is read-only") {
			t.Errorf("%s push: %d %q", user, code, stderr)
		}
		c.Close()
	}
	if len(on.pushes.pushes) != 0 {
		t.Errorf("an anonymous push reached receive-pack: %+v", on.pushes.pushes)
	}
}

// TestSSHCommands covers repos, info, bad paths and unknown commands.
func TestSSHCommands(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, &gitsvc.Git{}, nil)
	e.repo("mine", "alice")
	e.repo("theirs", "bob")
	signer, _ := e.newKey("alice")
	c, err := e.dial("kod", gossh.PublicKeys(signer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cases := []struct {
		cmd            string
		code           int
		stdout, stderr string
	}{
		{"", 0, "mine\n", "signed in as alice"},
		{"help", 0, "mine\n", "info <repo>"},
		{"list", 0, "mine\n", ""},
		{"info mine", 0, "name: mine\ndefault branch: (none: the repository is empty)\nbranches: (none)\n", ""},
		{"info /repos/mine.git", 0, "name: mine\n", ""},
		{"info theirs", 1, "", "kod: "},
		{"info nowhere", 1, "", "kod: Repository not found"},
		{"info ../mine", 1, "", "invalid repository path"},
		{"info", 1, "", "usage: info <repo>"},
		{"git-upload-pack '../../etc'", 1, "", "invalid repository path"},
		{"git-upload-pack 'a/b.git'", 1, "", "invalid repository path"},
		{"git-upload-pack '-x'", 1, "", "invalid repository path"},
		{"git-upload-pack 'theirs.git'", 1, "", "kod: "},
		{"git-upload-pack", 1, "", "usage: git-upload-pack"},
		{"rm -rf /", 1, "", `unknown command "rm"`},
		{"info 'mine", 1, "", "unterminated"},
	}
	for _, tc := range cases {
		out, stderr, code := run(t, c, tc.cmd)
		if code != tc.code || !strings.HasPrefix(out, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q..., stderr with %q", tc.cmd, code, out, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
}

// TestFailedAuthIsLoggedWithAddress and the per-address cap.
func TestFailedAuthLoggedAndConnectionsCapped(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, &gitsvc.Git{}, func(c *sshd.Config) { c.MaxPerAddr = 2 })
	e.repo("r", "alice")
	unknown, _ := e.newKey("")
	if _, err := e.dial("mallory", gossh.PublicKeys(unknown)); err == nil {
		t.Fatal("an unknown key signed in")
	}
	fp := forge.Fingerprint(unknown.PublicKey())
	if logs := e.logs(); !strings.Contains(logs, "ssh authentication failed") || !strings.Contains(logs, "remote=127.0.0.1:") || !strings.Contains(logs, fp) {
		t.Errorf("failed attempt not logged with address and fingerprint:\n%s", logs)
	}
	signer, _ := e.newKey("alice")
	var open []*gossh.Client
	for range 2 {
		c, err := e.dial("kod", gossh.PublicKeys(signer))
		if err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
		open = append(open, c)
	}
	if c, err := e.dial("kod", gossh.PublicKeys(signer)); err == nil {
		c.Close()
		t.Error("a third concurrent connection from one address was accepted")
	}
	open[0].Close()
	// The slot comes back once the server saw the close.
	var err error
	for range 50 {
		var c *gossh.Client
		if c, err = e.dial("kod", gossh.PublicKeys(signer)); err == nil {
			c.Close()
			break
		}
	}
	if err != nil {
		t.Errorf("no connection after one closed: %v", err)
	}
	open[1].Close()
}

func TestHostKeyCreatedOnceWithMode0600(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "ssh_host_ed25519_key")
	k1, created, _, err := sshd.LoadOrCreateHostKey(path)
	if err != nil || !created || k1.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Fatalf("create: %v %v", created, err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", info.Mode(), err)
	}
	k2, created, loose, err := sshd.LoadOrCreateHostKey(path)
	if err != nil || created || loose || string(k2.PublicKey().Marshal()) != string(k1.PublicKey().Marshal()) {
		t.Errorf("reuse: created %v loose %v err %v", created, loose, err)
	}
	os.Chmod(path, 0o644)
	if _, _, loose, _ := sshd.LoadOrCreateHostKey(path); !loose {
		t.Error("a readable host key is not reported")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not a key"), 0o600)
	if _, _, _, err := sshd.LoadOrCreateHostKey(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("garbage host key: %v", err)
	}
	if data, _ := os.ReadFile(bad); string(data) != "not a key" {
		t.Error("a garbage host key file was overwritten")
	}
}

// TestSessionLimits: an idle connection is closed after IdleTimeout, a busy
// one after MaxSession, and a second concurrent session from one address
// over MaxPerAddr is refused with a message. Each limit has a server of its
// own, so a loaded machine's delays never let one limit act for another.
func TestSessionLimits(t *testing.T) {
	t.Parallel()
	waitClosed := func(c *gossh.Client, what string) error {
		t.Helper()
		closed := make(chan error, 1)
		go func() { closed <- c.Wait() }()
		select {
		case err := <-closed:
			return err
		case <-time.After(time.Minute): // catches hangs only
			t.Fatalf("%s: the connection was not closed", what)
			return nil
		}
	}
	// startUploadPack starts a session that waits on git (upload-pack
	// waits for the client's wants while stdin stays open).
	startUploadPack := func(c *gossh.Client) *gossh.Session {
		t.Helper()
		sess, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		stdin, err := sess.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { stdin.Close() })
		if err := sess.Start("git-upload-pack 'r.git'"); err != nil {
			t.Fatal(err)
		}
		return sess
	}

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		e := newSSHEnv(t, &gitsvc.Git{}, func(c *sshd.Config) { c.IdleTimeout = 2 * time.Second })
		signer, _ := e.newKey("alice")
		idle, err := e.dial("kod", gossh.PublicKeys(signer))
		if err != nil {
			t.Fatal(err)
		}
		waitClosed(idle, "idle")
	})

	t.Run("max session", func(t *testing.T) {
		t.Parallel()
		e := newSSHEnv(t, &gitsvc.Git{}, func(c *sshd.Config) { c.MaxSession = 2 * time.Second })
		e.repo("r", "alice")
		signer, _ := e.newKey("alice")
		c, err := e.dial("kod", gossh.PublicKeys(signer))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		sess := startUploadPack(c)
		done := make(chan error, 1)
		go func() { done <- sess.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Error("the session ended cleanly instead of being cut")
			}
		case <-time.After(time.Minute):
			t.Fatal("MaxSession did not end the connection")
		}
	})

	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		e := newSSHEnv(t, &gitsvc.Git{}, func(c *sshd.Config) { c.MaxPerAddr = 1 })
		e.repo("r", "alice")
		signer, _ := e.newKey("alice")
		c, err := e.dial("kod", gossh.PublicKeys(signer))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The session holds the address's only slot once the server has
		// answered it (the refusal below is retried until then).
		sess := startUploadPack(c)
		defer sess.Close()
		deadline := time.Now().Add(time.Minute)
		for {
			_, stderr, code := run(t, c, "repos")
			if code == 1 && strings.Contains(stderr, "too many concurrent sessions") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("second session: %d %q", code, stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestShutdown: new connections are refused at once, an open session may
// finish until the deadline, and is cut then.
func TestShutdown(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, &gitsvc.Git{}, nil)
	e.repo("r", "alice")
	signer, _ := e.newKey("alice")
	c, err := e.dial("kod", gossh.PublicKeys(signer))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := sess.StdinPipe()
	defer stdin.Close()
	if err := sess.Start("git-upload-pack 'r.git'"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background()) // the deadline: cancelled below
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(ctx) }()
	// Shutdown closes the listener first thing; a dial that raced it is
	// closed by the server (it is shutting down), so retry until refused.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		c2, err := e.dial("kod", gossh.PublicKeys(signer))
		if err != nil {
			break
		}
		c2.Close()
		if time.Now().After(deadline) {
			t.Fatal("connections are still accepted during shutdown")
		}
	}
	select {
	case err := <-shut:
		t.Fatalf("shutdown returned with a session open: %v", err)
	default:
	}
	cancel()
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Errorf("shutdown with a session open at the deadline: %v", err)
	}
	if err := sess.Wait(); err == nil {
		t.Error("the open session was not cut at the deadline")
	}
}

// TestSilentConnectionsClosedAfterLoginGrace: 200 TCP connections that
// never start the SSH handshake (from one address, its per-address cap
// raised) are all closed: those beyond MaxUnauthenticated at once, the
// others when the login grace time ends; a client that signs in meanwhile
// is not cut by the grace time, and signing in works again after the flood.
func TestSilentConnectionsClosedAfterLoginGrace(t *testing.T) {
	t.Parallel()
	const silent, maxUnauth = 200, 50
	e := newSSHEnv(t, &gitsvc.Git{}, func(c *sshd.Config) {
		c.MaxPerAddr = 1000
		c.LoginGraceTime = 3 * time.Second
		c.MaxUnauthenticated = maxUnauth
	})
	e.repo("r", "alice")
	signer, _ := e.newKey("alice")
	// Signed in before the flood, it outlives the grace time.
	early, err := e.dial("kod", gossh.PublicKeys(signer))
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()

	type result struct {
		banner bool // the server started the handshake: it was let in
		err    error
	}
	results := make(chan result, silent)
	for range silent {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			// Read until the server closes: the banner, if let in, then EOF.
			c.SetReadDeadline(time.Now().Add(2 * time.Minute)) // catches a connection never closed
			buf := make([]byte, 256)
			var got []byte
			for {
				n, err := c.Read(buf)
				got = append(got, buf[:n]...)
				if err != nil {
					results <- result{banner: strings.HasPrefix(string(got), "SSH-2.0-"), err: err}
					return
				}
			}
		}()
	}
	admitted := 0
	for range silent {
		r := <-results
		if !errors.Is(r.err, io.EOF) && !errors.Is(r.err, syscall.ECONNRESET) {
			t.Fatalf("a silent connection was not closed by the server: %v", r.err)
		}
		if r.banner {
			admitted++
		}
	}
	// The early client signed in before: at most maxUnauth of the silent
	// ones were let in at once (the rest closed at once).
	if admitted > maxUnauth || admitted == 0 {
		t.Errorf("%d silent connections got to the handshake, want between 1 and %d", admitted, maxUnauth)
	}
	if out, _, code := run(t, early, "repos"); code != 0 || out != "r\n" {
		t.Errorf("the connection signed in before the flood: %d %q", code, out)
	}
	c, err := e.dial("kod", gossh.PublicKeys(signer))
	if err != nil {
		t.Fatalf("signing in after the flood: %v", err)
	}
	c.Close()
	if logs := e.logs(); !strings.Contains(logs, "not signed in within the login grace time") || !strings.Contains(logs, "too many connections have not signed in yet") {
		t.Errorf("closures not logged:\n%.3000s", logs)
	}
}
