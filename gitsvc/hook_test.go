package gitsvc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/kod-forge/kod/forge"
)

type recordingHandler struct {
	pre, post [][]forge.RefUpdate
	pushes    []string // repository of each pre-receive
	refuse    error
}

func (h *recordingHandler) PreReceive(_ context.Context, p *Push, u []forge.RefUpdate) error {
	h.pre = append(h.pre, u)
	h.pushes = append(h.pushes, p.Repo)
	return h.refuse
}

func (h *recordingHandler) PostReceive(_ context.Context, p *Push, u []forge.RefUpdate) []string {
	h.post = append(h.post, u)
	return []string{"queued for " + p.Repo}
}

func startHooks(t *testing.T, h HookHandler) *Pushes {
	t.Helper()
	pushes := NewPushes(filepath.Join(t.TempDir(), "hook.sock"))
	s := NewHookServer(pushes, h, slog.New(slog.DiscardHandler))
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return pushes
}

func envFunc(env []string) func(string) string {
	return func(k string) string {
		for _, e := range env {
			if name, v, ok := strings.Cut(e, "="); ok && name == k {
				return v
			}
		}
		return ""
	}
}

var line = strings.Repeat("a", 40) + " " + strings.Repeat("b", 40) + " refs/heads/main\n"

func TestHookAcceptsAndReportsMessages(t *testing.T) {
	h := &recordingHandler{}
	s := startHooks(t, h)
	env, end := s.BeginPush(&Push{Repo: "r", Principal: &forge.Principal{TokenID: "t"}})
	defer end()
	var stderr bytes.Buffer
	if code := RunHook(context.Background(), "pre-receive", strings.NewReader(line), &stderr, envFunc(env)); code != 0 {
		t.Fatalf("pre-receive refused: %d %s", code, stderr.String())
	}
	if code := RunHook(context.Background(), "post-receive", strings.NewReader(line), &stderr, envFunc(env)); code != 0 {
		t.Fatalf("post-receive: %d %s", code, stderr.String())
	}
	if len(h.pre) != 1 || h.pre[0][0].Ref != "refs/heads/main" || len(h.post) != 1 {
		t.Errorf("handler saw %+v / %+v", h.pre, h.post)
	}
	if !strings.Contains(stderr.String(), "queued for r") {
		t.Errorf("messages not shown: %q", stderr.String())
	}
}

// The hook fails closed: every doubt refuses the push.
func TestHookFailsClosed(t *testing.T) {
	h := &recordingHandler{}
	s := startHooks(t, h)
	env, end := s.BeginPush(&Push{Repo: "r", Principal: &forge.Principal{}})
	ok := envFunc(env)
	cases := []struct {
		name   string
		input  string
		getenv func(string) string
		want   string
	}{
		{"no credential", line, func(string) string { return "" }, "only accepts pushes through the kod server"},
		{"unknown credential", line, envFunc([]string{EnvHookSocket + "=" + s.SocketPath(), EnvHookToken + "=forged"}), "unknown or expired push credential"},
		{"server unreachable", line, envFunc([]string{EnvHookSocket + "=" + filepath.Join(t.TempDir(), "none.sock"), EnvHookToken + "=x"}), "cannot reach the kod server"},
		{"malformed line", "garbage\n", ok, "malformed ref update line"},
		{"over-long line", strings.Repeat("a", 40) + " " + strings.Repeat("b", 40) + " refs/heads/" + strings.Repeat("x", 5000) + "\n", ok, "longer than"},
		// TestNonUTF8BranchRefused: two such names would both become
		// "caf\uFFFD" in runs and webhooks.
		{"branch name not UTF-8", strings.Repeat("0", 40) + " " + strings.Repeat("b", 40) + " refs/heads/caf\xe9\n", ok, `ref name "refs/heads/caf\xe9" is not valid UTF-8`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := RunHook(context.Background(), "pre-receive", strings.NewReader(c.input), &stderr, c.getenv)
			if code == 0 || !strings.Contains(stderr.String(), c.want) || !strings.Contains(stderr.String(), "push refused") {
				t.Errorf("code %d, stderr %q, want refusal mentioning %q", code, stderr.String(), c.want)
			}
		})
	}
	var readErr bytes.Buffer
	if code := RunHook(context.Background(), "pre-receive", io.MultiReader(strings.NewReader(line), iotest.ErrReader(errors.New("pipe broke"))), &readErr, ok); code == 0 || !strings.Contains(readErr.String(), "pipe broke") {
		t.Errorf("read error: code %d, stderr %q", code, readErr.String())
	}
	if len(h.pre) != 0 {
		t.Errorf("handler consulted for bad input: %v", h.pre)
	}
	// A refusal from the policy refuses with its message.
	h.refuse = forge.Forbidden("branch 'main' is protected")
	var stderr bytes.Buffer
	if code := RunHook(context.Background(), "pre-receive", strings.NewReader(line), &stderr, ok); code == 0 || !strings.Contains(stderr.String(), "branch 'main' is protected") {
		t.Errorf("policy refusal: %d %q", code, stderr.String())
	}
	// Internal errors refuse without leaking their text.
	h.refuse = errors.New("disk on fire")
	stderr.Reset()
	if code := RunHook(context.Background(), "pre-receive", strings.NewReader(line), &stderr, ok); code == 0 || strings.Contains(stderr.String(), "disk on fire") {
		t.Errorf("internal error: %d %q", code, stderr.String())
	}
	// Once the push ended, its credential is dead.
	end()
	stderr.Reset()
	if code := RunHook(context.Background(), "pre-receive", strings.NewReader(line), &stderr, ok); code == 0 {
		t.Errorf("credential still valid after the push ended: %q", stderr.String())
	}
}

func TestRepoPathStaysInside(t *testing.T) {
	root := t.TempDir()
	for _, bad := range []string{"../x", "a/b", "..", ""} {
		if p, err := RepoPath(root, bad); err == nil {
			t.Errorf("RepoPath(%q) = %s, want an error", bad, p)
		}
	}
	if p, err := RepoPath(root, "ok-name"); err != nil || p != filepath.Join(root, "ok-name.git") {
		t.Errorf("RepoPath(ok-name) = %s, %v", p, err)
	}
}

func TestUserArgRefusesOptions(t *testing.T) {
	for _, bad := range []string{"-x", "--upload-pack=evil", "", "a\nb", "a\x00b"} {
		if _, err := UserArg(bad); err == nil {
			t.Errorf("UserArg(%q) accepted", bad)
		}
	}
}

func TestRemoveStaleQuarantines(t *testing.T) {
	repo := t.TempDir()
	old := filepath.Join(repo, "objects", "tmp_objdir-incoming-OLD")
	fresh := filepath.Join(repo, "objects", "tmp_objdir-incoming-NEW")
	pack := filepath.Join(repo, "objects", "pack")
	for _, d := range []string{old, fresh, pack} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Hour)
	os.Chtimes(old, past, past)
	if err := RemoveStaleQuarantines(repo, 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale quarantine kept: %v", err)
	}
	for _, d := range []string{fresh, pack} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}
