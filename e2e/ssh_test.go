package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// keyPair is a key pair made by ssh-keygen.
type keyPair struct {
	Path string // private key; the public key is Path + ".pub"
	Pub  string // the public key line
}

func newSSHKey(t testing.TB, comment string) keyPair {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{Path: path, Pub: strings.TrimSpace(string(pub))}
}

// sshArgs are the OpenSSH options of every test connection to s with key
// (no key at all when key.Path is ""), after extra options (OpenSSH keeps
// the first value of an option, so extra ones win).
func (s *server) sshArgs(key keyPair, extra ...string) []string {
	_, port, _ := net.SplitHostPort(s.SSHAddr)
	args := append(append([]string{"-F", "/dev/null"}, extra...), "-p", port, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10")
	if key.Path != "" {
		args = append(args, "-i", key.Path, "-o", "IdentitiesOnly=yes")
	} else {
		args = append(args, "-o", "PubkeyAuthentication=no")
	}
	return args
}

// ssh runs `ssh [opts] user@host command...` against s and returns its
// combined output and exit status.
func (s *server) ssh(key keyPair, user string, opts []string, command ...string) (string, int) {
	s.t.Helper()
	host, _, _ := net.SplitHostPort(s.SSHAddr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append(s.sshArgs(key, opts...), user+"@"+host)
	cmd := exec.CommandContext(ctx, "ssh", append(args, command...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.t.Fatalf("ssh: %v", err)
		}
		code = ee.ExitCode()
	}
	return string(out), code
}

// sshURL is the clone URL of repo over SSH as user.
func (s *server) sshURL(user, repo string) string {
	return "ssh://" + user + "@" + s.SSHAddr + "/" + repo + ".git"
}

// gitSSH runs git in p with GIT_SSH_COMMAND using key (and extra ssh
// options); it returns the combined output.
func (p *project) gitSSH(s *server, key keyPair, extra []string, args ...string) (string, error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = p.Dir
	quoted := []string{"ssh"}
	for _, a := range s.sshArgs(key, extra...) {
		quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
	}
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=kod test", "GIT_AUTHOR_EMAIL=test@kod.invalid", "GIT_COMMITTER_NAME=kod test", "GIT_COMMITTER_EMAIL=test@kod.invalid",
		"GIT_SSH_COMMAND="+strings.Join(quoted, " "))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// user is a username with a linked token and an SSH key added over REST.
type user struct {
	Name  string
	Token string
	Key   keyPair
	KeyID string
}

// newUser makes name a collaborator of repo (a username must be known
// before a token can carry it), creates a token for it with perms, and
// adds a fresh key with that token.
func (s *server) newUser(name, repo string, perms ...string) *user {
	s.t.Helper()
	s.mustDo("POST", "/repos/"+repo+"/collaborators", adminToken, map[string]string{"username": name}, http.StatusCreated, nil)
	var tok struct{ Token string }
	s.mustDo("POST", "/tokens", adminToken, map[string]any{"name": name, "username": name, "permissions": perms}, http.StatusCreated, &tok)
	u := &user{Name: name, Token: tok.Token, Key: newSSHKey(s.t, name+"@laptop")}
	var key struct{ ID, Fingerprint string }
	s.mustDo("POST", "/keys", u.Token, map[string]string{"publicKey": u.Key.Pub}, http.StatusCreated, &key)
	fp, err := exec.Command("ssh-keygen", "-lf", u.Key.Path+".pub").Output()
	if err != nil || strings.Fields(string(fp))[1] != key.Fingerprint {
		s.t.Fatalf("fingerprint %q, ssh-keygen -lf says %q (%v)", key.Fingerprint, fp, err)
	}
	u.KeyID = key.ID
	return u
}

// headOf returns the commit branch points at in repo, read by the admin
// over HTTP ("" if none).
func (s *server) headOf(repo, branch string) string {
	s.t.Helper()
	p := &project{t: s.t, Dir: s.t.TempDir()}
	out := p.git("ls-remote", s.gitURL(repo, adminToken), "refs/heads/"+branch)
	if f := strings.Fields(out); len(f) > 0 {
		return f[0]
	}
	return ""
}

// TestGitOverSSH is git over SSH with the real OpenSSH client and keys made
// by ssh-keygen and added over REST: clone, archive, `repos`, `info`,
// branch protection through the same pre-receive path as HTTP, an
// admin-linked user and an owner pushing a protected branch, an unknown
// key, a client environment that must not reach git, and a key removed
// over REST that stops working at once, also on an open connection.
func TestGitOverSSH(t *testing.T) {
	t.Parallel()
	s := startSSHServer(t, "", []string{"KOD_LOG_LEVEL=debug"})
	s.createRepo("proj")
	seed := newProject(t, "main", map[string]string{"README.md": "hello\n"})
	seed.git("push", "-q", s.gitURL("proj", adminToken), "main")
	s.mustDo("PUT", "/repos/proj/protections/branches/main", adminToken, nil, http.StatusOK, nil)
	alice := s.newUser("alice", "proj", "repo:read", "repo:write")
	zed := s.newUser("zed", "proj", "admin")
	olga := s.newUser("olga", "proj", "repo:read", "repo:write")
	s.mustDo("POST", "/repos", olga.Token, map[string]string{"name": "olgas"}, http.StatusCreated, nil)
	s.mustDo("PUT", "/repos/olgas/protections/branches/main", olga.Token, nil, http.StatusOK, nil)
	mainAt := s.headOf("proj", "main")

	// Clone, and the other path forms of the issue.
	c := &project{t: t, Dir: t.TempDir()}
	if out, err := c.gitSSH(s, alice.Key, nil, "clone", "-q", s.sshURL("kod", "proj"), "."); err != nil {
		t.Fatalf("clone over SSH: %v\n%s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(c.Dir, "README.md")); string(got) != "hello\n" || strings.TrimSpace(c.git("rev-parse", "HEAD")) != mainAt {
		t.Errorf("clone content %q", got)
	}
	host, _, _ := net.SplitHostPort(s.SSHAddr)
	for _, url := range []string{s.sshURL("kod", "repos/proj"), "ssh://kod@" + s.SSHAddr + "/proj", "kod@" + host + ":proj.git", "kod@" + host + ":repos/proj.git"} {
		if out, err := c.gitSSH(s, alice.Key, nil, "ls-remote", url, "refs/heads/main"); err != nil || !strings.HasPrefix(out, mainAt) {
			t.Errorf("ls-remote %s: %v\n%s", url, err, out)
		}
	}
	if out, err := c.gitSSH(s, alice.Key, nil, "archive", "--remote="+s.sshURL("kod", "proj"), "main", "README.md"); err != nil || !strings.Contains(out, "hello") {
		t.Errorf("git archive --remote: %v\n%.200q", err, out)
	}

	// kod's commands.
	if out, code := s.ssh(alice.Key, "kod", nil, "repos"); code != 0 || out != "proj\n" {
		t.Errorf("alice's repos: %d %q", code, out)
	}
	if out, code := s.ssh(zed.Key, "kod", nil, "repos"); code != 0 || out != "olgas\nproj\n" {
		t.Errorf("admin-linked repos: %d %q", code, out)
	}
	if out, code := s.ssh(alice.Key, "git", nil, "info", "proj"); code != 0 || !strings.Contains(out, "name: proj\ndefault branch: main\nbranches:\n* main\n") {
		t.Errorf("info: %d %q", code, out)
	}
	if out, code := s.ssh(alice.Key, "kod", nil, "frobnicate"); code != 1 || !strings.Contains(out, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, out)
	}

	// A collaborator pushes a feature branch, but not the protected main:
	// not as an update, a deletion, or with an environment that would
	// switch the hooks off if it reached git.
	c.git("checkout", "-q", "-b", "feature")
	feature := c.commit("feature", map[string]string{"f.txt": "f\n"})
	if out, err := c.gitSSH(s, alice.Key, nil, "push", "-q", "origin", "feature"); err != nil || s.headOf("proj", "feature") != feature {
		t.Fatalf("push feature: %v\n%s", err, out)
	}
	c.git("checkout", "-q", "main")
	direct := c.commit("direct", map[string]string{"g.txt": "g\n"})
	hostileEnv := []string{"-o", "SetEnv=LD_PRELOAD=x GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.hooksPath GIT_CONFIG_VALUE_0=/dev/null"}
	for _, push := range []struct {
		name string
		opts []string
		args []string
	}{
		{"update", nil, []string{"push", "origin", "main"}},
		{"delete", nil, []string{"push", "origin", ":main"}},
		{"update with hooks switched off by SetEnv", hostileEnv, []string{"push", "origin", "main"}},
	} {
		out, err := c.gitSSH(s, alice.Key, push.opts, push.args...)
		if err == nil || !strings.Contains(out, "branch 'main' is protected") || strings.Contains(out, "LD_PRELOAD") {
			t.Errorf("collaborator %s of main: %v\n%s", push.name, err, out)
		}
		if at := s.headOf("proj", "main"); at != mainAt {
			t.Fatalf("%s moved main to %s", push.name, at)
		}
	}
	if logs := s.Logs(); !strings.Contains(logs, "name=LD_PRELOAD") || !strings.Contains(logs, "name=GIT_CONFIG_KEY_0") {
		t.Errorf("the client did not send the environment (the test proves nothing):\n%s", logs)
	}
	// Variables that would hide every branch from upload-pack change nothing
	// either (the literal form, and all at once).
	for _, opts := range [][]string{
		{"-o", "SetEnv=LD_PRELOAD=x", "-o", "SetEnv=GIT_CONFIG_COUNT=1"},
		{"-o", "SetEnv=LD_PRELOAD=x GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=transfer.hideRefs GIT_CONFIG_VALUE_0=refs/heads"},
	} {
		out, err := c.gitSSH(s, alice.Key, opts, "ls-remote", "origin")
		if err != nil || !strings.Contains(out, "refs/heads/main") || !strings.Contains(out, "refs/heads/feature") || strings.Contains(out, "LD_PRELOAD") {
			t.Errorf("ls-remote with %v: %v\n%s", opts, err, out)
		}
	}

	// The admin-linked user may push the protected branch over SSH; so may
	// the owner of a repository on their own (the key acts as the token that
	// added it, which created the repository).
	if out, err := c.gitSSH(s, zed.Key, nil, "push", "-q", "origin", "main"); err != nil || s.headOf("proj", "main") != direct {
		t.Errorf("admin-linked push of main: %v\n%s", err, out)
	}
	if out, err := c.gitSSH(s, olga.Key, nil, "push", "-q", s.sshURL("kod", "olgas"), "main"); err != nil || s.headOf("olgas", "main") != direct {
		t.Errorf("owner's push of main: %v\n%s", err, out)
	}
	if out, err := c.gitSSH(s, alice.Key, nil, "push", "-q", s.sshURL("kod", "olgas"), "feature"); err == nil {
		t.Errorf("alice pushed to a repository she is not a collaborator of:\n%s", out)
	}

	// An unknown key is refused, and the attempt is logged with the address.
	stranger := newSSHKey(t, "stranger")
	if out, code := s.ssh(stranger, "kod", nil, "repos"); code != 255 || !strings.Contains(out, "Permission denied (publickey)") {
		t.Errorf("unknown key: %d %q", code, out)
	}
	if out, err := c.gitSSH(s, stranger, nil, "ls-remote", "origin"); err == nil {
		t.Errorf("unknown key listed refs:\n%s", out)
	}
	if !regexp.MustCompile(`msg="ssh authentication failed: unknown key" .*remote=127\.0\.0\.1:\d+ .*fingerprint=SHA256:`).MatchString(s.Logs()) {
		t.Errorf("failed attempt not logged with the remote address:\n%s", s.Logs())
	}

	// A key removed over REST stops at once: on an already open (multiplexed)
	// connection, and for new connections.
	ctlDir, err := os.MkdirTemp("", "kodssh")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(ctlDir)
	ctl := []string{"-o", "ControlMaster=auto", "-o", "ControlPath=" + filepath.Join(ctlDir, "m"), "-o", "ControlPersist=60"}
	defer s.ssh(alice.Key, "kod", append(ctl, "-O", "exit"))
	if out, code := s.ssh(alice.Key, "kod", ctl, "repos"); code != 0 || out != "proj\n" {
		t.Fatalf("repos over the control connection: %d %q", code, out)
	}
	s.mustDo("DELETE", "/keys/"+alice.KeyID, alice.Token, nil, http.StatusNoContent, nil)
	if out, code := s.ssh(alice.Key, "kod", ctl, "repos"); code != 1 || !strings.Contains(out, "not registered") {
		t.Errorf("removed key on the open connection: %d %q", code, out)
	}
	if out, code := s.ssh(alice.Key, "kod", nil, "repos"); code != 255 || !strings.Contains(out, "Permission denied") {
		t.Errorf("removed key on a new connection: %d %q", code, out)
	}
	if out, err := c.gitSSH(s, alice.Key, nil, "fetch", "origin"); err == nil {
		t.Errorf("removed key fetched:\n%s", out)
	}
}

// TestSSHAnonymousReadAndHostKey: anonymous clone only when enabled,
// anonymous push never; the host key is created 0600 on first start and
// the same after a restart.
func TestSSHAnonymousReadAndHostKey(t *testing.T) {
	t.Parallel()
	s := startSSHServer(t, "", nil)
	s.createRepo("pub")
	seed := newProject(t, "main", map[string]string{"README.md": "public\n"})
	seed.git("push", "-q", s.gitURL("pub", adminToken), "main")
	noKey := keyPair{}
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	pinned := []string{"-o", "HostKeyAlias=kod-e2e", "-o", "UserKnownHostsFile=" + knownHosts}

	for _, name := range []string{"anonymous", "anon"} {
		if out, code := s.ssh(noKey, name, append(pinned, "-o", "StrictHostKeyChecking=accept-new"), "repos"); code != 255 || !strings.Contains(out, "Permission denied") {
			t.Errorf("%s with anonymous read off: %d %q", name, code, out)
		}
	}
	c := &project{t: t, Dir: t.TempDir()}
	if out, err := c.gitSSH(s, noKey, nil, "clone", "-q", s.sshURL("anonymous", "pub"), "off"); err == nil {
		t.Errorf("anonymous clone with anonymous read off:\n%s", out)
	}
	info, err := os.Stat(filepath.Join(s.Home, "ssh_host_ed25519_key"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("host key: %v %v", info, err)
	}

	s.Stop()
	s.env = append(s.env, "KOD_SSH_ANONYMOUS_READ=true")
	s.Restart()
	// StrictHostKeyChecking=yes against the key seen before the restart.
	if out, code := s.ssh(noKey, "anonymous", append(pinned, "-o", "StrictHostKeyChecking=yes"), "repos"); code != 0 || out != "pub\n" {
		t.Errorf("anonymous repos after restart (same host key?): %d %q", code, out)
	}
	if out, err := c.gitSSH(s, noKey, nil, "clone", "-q", s.sshURL("anonymous", "pub"), "on"); err != nil {
		t.Fatalf("anonymous clone: %v\n%s", err, out)
	}
	on := &project{t: t, Dir: filepath.Join(c.Dir, "on")}
	if got, _ := os.ReadFile(filepath.Join(on.Dir, "README.md")); string(got) != "public\n" {
		t.Errorf("anonymous clone content %q", got)
	}
	before := s.headOf("pub", "main")
	on.commit("anonymous change", map[string]string{"x": "x"})
	for _, name := range []string{"anonymous", "anon"} {
		out, err := on.gitSSH(s, noKey, nil, "push", s.sshURL(name, "pub"), "main")
		if err == nil || !strings.Contains(out, "anonymous access is read-only") {
			t.Errorf("%s push: %v\n%s", name, err, out)
		}
	}
	if s.headOf("pub", "main") != before {
		t.Error("an anonymous push changed main")
	}
	// Other login names still need a key.
	if out, code := s.ssh(noKey, "kod", nil, "repos"); code != 255 {
		t.Errorf("keyless non-anonymous user: %d %q", code, out)
	}
}

// TestAdminAddedKeyForTokenlessCollaborator is Kod's model with the real
// OpenSSH client: an admin adds a key for a collaborator who holds no token
// at all; the key clones and pushes a branch (the protected main is still
// refused), and loses access when the user is removed as collaborator, and
// when the key is deleted.
func TestAdminAddedKeyForTokenlessCollaborator(t *testing.T) {
	t.Parallel()
	s := startSSHServer(t, "", nil)
	s.createRepo("team")
	seed := newProject(t, "main", map[string]string{"README.md": "hello\n"})
	seed.git("push", "-q", s.gitURL("team", adminToken), "main")
	s.mustDo("PUT", "/repos/team/protections/branches/main", adminToken, nil, http.StatusOK, nil)
	mainAt := s.headOf("team", "main")
	s.mustDo("POST", "/repos/team/collaborators", adminToken, map[string]string{"username": "carol"}, http.StatusCreated, nil)
	key := newSSHKey(t, "carol@laptop")
	var added struct{ ID string }
	s.mustDo("POST", "/keys", adminToken, map[string]string{"publicKey": key.Pub, "username": "carol"}, http.StatusCreated, &added)

	c := &project{t: t, Dir: t.TempDir()}
	if out, err := c.gitSSH(s, key, nil, "clone", "-q", s.sshURL("kod", "team"), "."); err != nil {
		t.Fatalf("clone with the admin-added key: %v\n%s", err, out)
	}
	c.git("checkout", "-q", "-b", "feature")
	feature := c.commit("feature", map[string]string{"f.txt": "f\n"})
	if out, err := c.gitSSH(s, key, nil, "push", "-q", "origin", "feature"); err != nil || s.headOf("team", "feature") != feature {
		t.Fatalf("push a branch with the admin-added key: %v\n%s", err, out)
	}
	c.git("checkout", "-q", "main")
	c.commit("direct", map[string]string{"g.txt": "g\n"})
	if out, err := c.gitSSH(s, key, nil, "push", "origin", "main"); err == nil || !strings.Contains(out, "branch 'main' is protected") || s.headOf("team", "main") != mainAt {
		t.Errorf("push of the protected main: %v\n%s", err, out)
	}

	// No longer a collaborator: nothing, on a new connection.
	s.mustDo("DELETE", "/repos/team/collaborators/carol", adminToken, nil, http.StatusNoContent, nil)
	if out, err := c.gitSSH(s, key, nil, "ls-remote", "origin"); err == nil || strings.Contains(out, "refs/heads") {
		t.Errorf("after the collaborator was removed: %v\n%s", err, out)
	}
	// Back as collaborator, then the key is deleted.
	s.mustDo("POST", "/repos/team/collaborators", adminToken, map[string]string{"username": "carol"}, http.StatusCreated, nil)
	if out, err := c.gitSSH(s, key, nil, "ls-remote", "origin"); err != nil || !strings.Contains(out, "refs/heads/feature") {
		t.Fatalf("a collaborator again: %v\n%s", err, out)
	}
	s.mustDo("DELETE", "/keys/"+added.ID, adminToken, nil, http.StatusNoContent, nil)
	if out, code := s.ssh(key, "kod", nil, "repos"); code != 255 || !strings.Contains(out, "Permission denied") {
		t.Errorf("deleted key: %d %q", code, out)
	}
}

// TestSilentSSHConnectionsClosed: 200 TCP connections to the SSH port that
// never start the handshake are all closed by the server (beyond
// KOD_SSH_MAX_UNAUTHENTICATED at once, the others after
// KOD_SSH_LOGIN_GRACE_TIME), and the real OpenSSH client signs in and works
// afterwards.
func TestSilentSSHConnectionsClosed(t *testing.T) {
	t.Parallel()
	s := startSSHServer(t, "", []string{"KOD_SSH_LOGIN_GRACE_TIME=3s", "KOD_SSH_MAX_PER_ADDRESS=1000"})
	s.createRepo("quiet")
	u := s.newUser("ursula", "quiet", "repo:read")
	closed := make(chan error, 200)
	for range 200 {
		c, err := net.Dial("tcp", s.SSHAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() {
			c.SetReadDeadline(time.Now().Add(2 * time.Minute)) // catches a connection never closed
			_, err := io.Copy(io.Discard, c)
			if err == nil {
				err = io.EOF
			}
			closed <- err
		}()
	}
	for range 200 {
		if err := <-closed; !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("a silent connection was not closed by the server: %v", err)
		}
	}
	if out, code := s.ssh(u.Key, "kod", nil, "repos"); code != 0 || out != "quiet\n" {
		t.Errorf("OpenSSH after the silent connections: %d %q", code, out)
	}
	if logs := s.Logs(); !strings.Contains(logs, "not signed in within the login grace time") {
		t.Errorf("grace-time closures not logged:\n%.3000s", logs)
	}
}
