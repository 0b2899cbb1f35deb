package sshd_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/gitsvc/sshd"
)

// sshEnv is an SSH server over a bbolt store in a temp dir with real bare
// repositories, and a log that tests can read.
type sshEnv struct {
	t        *testing.T
	store    *boltstore.Store
	reposDir string
	addr     string
	pushes   *recordingPushes
	srv      *sshd.Server
	logMu    sync.Mutex
	logBuf   bytes.Buffer
}

// syncWriter serialises the log writes of the server's goroutines.
type syncWriter struct{ e *sshEnv }

func (w syncWriter) Write(p []byte) (int, error) {
	w.e.logMu.Lock()
	defer w.e.logMu.Unlock()
	return w.e.logBuf.Write(p)
}

func (e *sshEnv) logs() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	return e.logBuf.String()
}

// recordingPushes stands in for the hook server.
type recordingPushes struct {
	mu     sync.Mutex
	pushes []gitsvc.Push
}

func (r *recordingPushes) BeginPush(p *gitsvc.Push) ([]string, func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pushes = append(r.pushes, *p)
	return []string{gitsvc.EnvHookSocket + "=/nonexistent", gitsvc.EnvHookToken + "=test"}, func() {}
}

// newSSHEnv starts a server; change cfg with edit (nil for none).
func newSSHEnv(t *testing.T, git *gitsvc.Git, edit func(*sshd.Config)) *sshEnv {
	t.Helper()
	dir := t.TempDir()
	store, err := boltstore.Open(filepath.Join(dir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &sshEnv{t: t, store: store, reposDir: filepath.Join(dir, "repos"), pushes: &recordingPushes{}}
	hostKey, _, _, err := sshd.LoadOrCreateHostKey(filepath.Join(dir, "host_key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := sshd.Config{HostKey: hostKey, ReposDir: e.reposDir}
	if edit != nil {
		edit(&cfg)
	}
	log := slog.New(slog.NewTextHandler(syncWriter{e}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := sshd.New(cfg, store, git, e.pushes, log)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		<-done
	})
	return e
}

// repo creates a bare repository whose collaborators are users.
func (e *sshEnv) repo(name string, users ...string) {
	e.t.Helper()
	dir, err := gitsvc.RepoPath(e.reposDir, name)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := (&gitsvc.Git{}).InitBare(context.Background(), dir); err != nil {
		e.t.Fatal(err)
	}
	r := &forge.Repo{Name: name, Path: dir, OwnerTokenID: "nobody", ProtectedBranches: []string{}}
	for _, u := range users {
		r.Collaborators = append(r.Collaborators, forge.Collaborator{Username: u})
	}
	if err := e.store.CreateRepo(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
}

// newKey returns a fresh ed25519 signer, registered for user unless user
// is "", added by a new read-write token of user.
func (e *sshEnv) newKey(user string) (gossh.Signer, *forge.SSHKey) {
	e.t.Helper()
	if user == "" {
		return e.keyAddedBy("", nil)
	}
	id := e.token(user, forge.PermRepoRead, forge.PermRepoWrite)
	return e.keyAddedBy(user, &forge.Principal{TokenID: id, Username: user, Permissions: []forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}})
}

// keyAddedBy returns a fresh ed25519 signer, registered for user unless
// user is "", recorded as added by principal by (nil: a key from before
// kod recorded who adds keys).
func (e *sshEnv) keyAddedBy(user string, by *forge.Principal) (gossh.Signer, *forge.SSHKey) {
	e.t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		e.t.Fatal(err)
	}
	if user == "" {
		return signer, nil
	}
	key, err := forge.NewSSHKey(user, string(gossh.MarshalAuthorizedKey(signer.PublicKey())), "", by)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.CreateKey(context.Background(), key); err != nil {
		e.t.Fatal(err)
	}
	return signer, key
}

// token stores a token linked to user (SSH users hold what their tokens
// hold) and returns its id.
func (e *sshEnv) token(user string, perms ...forge.Permission) string {
	e.t.Helper()
	t := &forge.Token{ID: forge.NewID(), Name: user, Hash: forge.HashToken(forge.NewTokenSecret()), Username: user, Permissions: perms}
	if err := e.store.CreateToken(context.Background(), t); err != nil {
		e.t.Fatal(err)
	}
	return t.ID
}

func (e *sshEnv) dial(user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", e.addr, &gossh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
}

// run runs cmd in a new session of c with env, returning stdout, stderr
// and the exit status.
func run(t *testing.T, c *gossh.Client, cmd string, env ...string) (string, string, int) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	defer sess.Close()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		_ = sess.Setenv(k, v) // the server refuses all but GIT_PROTOCOL
	}
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	err = sess.Run(cmd)
	var exit *gossh.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitStatus()
	}
	t.Fatalf("%s: %v", cmd, err)
	return "", "", -1
}

// offerOnly offers a real public key but never signs: the x/crypto client
// asks the server whether the key is acceptable and, only when it is,
// calls Sign, which fails, so the client moves on to its next method.
type offerOnly struct {
	gossh.Signer
	mu    sync.Mutex
	asked bool
}

func (o *offerOnly) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = true
	return nil, errors.New("this key is only offered, never used")
}

// queried reports whether the server accepted the offered key (the client
// only tries to sign after the server said it would accept it).
func (o *offerOnly) queried() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.asked
}

// TestSigningKeyDecidesIdentity is the CVE-2024-45337 shape: the client
// offers alice's key A (the server says it would accept it) without
// signing, then signs with bob's key B. The session must act as bob.
func TestSigningKeyDecidesIdentity(t *testing.T) {
	t.Parallel()
	e := newSSHEnv(t, &gitsvc.Git{}, nil)
	e.repo("alice-repo", "alice")
	e.repo("bob-repo", "bob")
	keyA, _ := e.newKey("alice")
	keyB, _ := e.newKey("bob")
	offered := &offerOnly{Signer: keyA}
	step := 0
	c, err := gossh.Dial("tcp", e.addr, &gossh.ClientConfig{
		User:            "kod",
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		AuthCallback: func(*gossh.ClientAuthContext) (gossh.AuthMethod, error) {
			step++
			switch step {
			case 1:
				return gossh.PublicKeys(offered), nil
			case 2:
				return gossh.PublicKeys(keyB), nil
			}
			return nil, errors.New("no more methods")
		},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if !offered.queried() {
		t.Fatal("key A was never offered: the test proves nothing")
	}
	out, stderr, code := run(t, c, "repos")
	if code != 0 || out != "bob-repo\n" {
		t.Errorf("repos as the signer of B: exit %d, stdout %q, stderr %q; want only bob-repo", code, out, stderr)
	}
	if _, _, code := run(t, c, "git-upload-pack 'alice-repo.git'"); code == 0 {
		t.Error("the session could read alice's repository")
	}

	// Offering A and then signing with an unknown key gets nobody in.
	unknown, _ := e.newKey("")
	step = 0
	offered2 := &offerOnly{Signer: keyA}
	_, err = gossh.Dial("tcp", e.addr, &gossh.ClientConfig{
		User:            "kod",
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		AuthCallback: func(*gossh.ClientAuthContext) (gossh.AuthMethod, error) {
			step++
			switch step {
			case 1:
				return gossh.PublicKeys(offered2), nil
			case 2:
				return gossh.PublicKeys(unknown), nil
			}
			return nil, errors.New("no more methods")
		},
	})
	if err == nil || !offered2.queried() {
		t.Errorf("offering A and signing with an unknown key: err %v, A offered %v", err, offered2.queried())
	}
}
