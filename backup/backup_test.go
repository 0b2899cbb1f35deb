package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
)

// fixture is a server's directories: a bbolt store with a repository
// record and a token, a bare repository with commits on two branches and a
// tag, step logs, and an SSH host key.
type fixture struct {
	home, data, repos, key string
	store                  *boltstore.Store
	work                   string // work tree that pushes to repos/app.git
	commits                int
}

func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	home := t.TempDir()
	f := &fixture{home: home, data: filepath.Join(home, "data"), repos: filepath.Join(home, "repos"), key: filepath.Join(home, "ssh_host_ed25519_key"), work: t.TempDir()}
	var err error
	f.store, err = boltstore.Open(filepath.Join(f.data, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	ctx := context.Background()
	if err := f.store.CreateRepo(ctx, &forge.Repo{Name: "app", CreatedAt: 1, ProtectedBranches: []string{"main"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.CreateToken(ctx, &forge.Token{ID: "tok", Name: "admin", Hash: forge.HashToken("kod_x"), Permissions: []forge.Permission{forge.PermAdmin}}); err != nil {
		t.Fatal(err)
	}
	bare := filepath.Join(f.repos, "app.git")
	git(t, home, "init", "-q", "--bare", "-b", "main", bare)
	git(t, f.work, "init", "-q", "-b", "main")
	f.commit(t, 150) // > transfer.unpackLimit: arrives as a pack
	git(t, f.work, "tag", "-a", "v1", "-m", "v1")
	git(t, f.work, "checkout", "-q", "-b", "dev")
	f.commit(t, 3) // a few loose objects
	git(t, f.work, "push", "-q", bare, "main", "dev", "v1")
	git(t, bare, "symbolic-ref", "HEAD", "refs/heads/main")
	if err := os.MkdirAll(filepath.Join(f.data, "logs", "run1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.data, "logs", "run1", "0.log"), []byte("step output\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(f.data, "artifacts", "run1"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.data, "artifacts", "run1", "0f0f"), []byte("artifact bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.key, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// commit adds n files in one commit.
func (f *fixture) commit(t testing.TB, n int) {
	t.Helper()
	f.commits++
	for i := range n {
		name := filepath.Join(f.work, fmt.Sprintf("f%d-%d.txt", f.commits, i))
		if err := os.WriteFile(name, []byte(fmt.Sprintf("content %d %d\n", f.commits, i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git(t, f.work, "add", "-A")
	git(t, f.work, "commit", "-q", "-m", fmt.Sprint("c", f.commits))
}

// goroutineT turns Fatal into Error plus runtime.Goexit-free return for
// helpers called off the test goroutine: it panics with errStop, which
// the goroutine recovers.
type goroutineT struct{ testing.TB }

var errStop = errors.New("stop")

func (g goroutineT) Fatal(args ...any) { g.Error(args...); panic(errStop) }
func (g goroutineT) Fatalf(format string, args ...any) {
	g.Errorf(format, args...)
	panic(errStop)
}

func (f *fixture) source() Source {
	return Source{DB: f.store.DB(), ReposDir: f.repos, LogsDir: filepath.Join(f.data, "logs"), ArtifactsDir: filepath.Join(f.data, "artifacts"), HostKeyPath: f.key, Mode: "online"}
}

func (f *fixture) archive(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Write(context.Background(), &buf, f.source()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newTarget(t *testing.T) Target {
	d := t.TempDir()
	return Target{DataDir: filepath.Join(d, "data"), ReposDir: filepath.Join(d, "repos"), HostKeyPath: filepath.Join(d, "key")}
}

// TestRoundTrip: what Write archives, Restore brings back: the database's
// records (with a new instance id), every ref of the repository with all
// objects, the logs and the host key with its mode.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	srcInstance, _ := f.store.InstanceID(ctx)
	data := f.archive(t)
	m, sum, err := Verify(bytes.NewReader(data))
	if err != nil || m.Format != FormatVersion || strings.Join(m.Repos, ",") != "app" || !m.HostKey || sum.Files < 10 {
		t.Fatalf("verify: %+v %+v %v", m, sum, err)
	}
	tg := newTarget(t)
	if _, err := Restore(ctx, bytes.NewReader(data), tg); err != nil {
		t.Fatal(err)
	}
	store, err := boltstore.Open(filepath.Join(tg.DataDir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if repo, err := store.GetRepo(ctx, "app"); err != nil || !repo.IsProtected("main") {
		t.Errorf("repo record: %+v %v", repo, err)
	}
	if tok, err := store.TokenByHash(ctx, forge.HashToken("kod_x")); err != nil || tok.ID != "tok" {
		t.Errorf("token: %+v %v", tok, err)
	}
	if inst, _ := store.InstanceID(ctx); inst == srcInstance {
		t.Errorf("the restored database kept the instance id %s", inst)
	}
	src, dst := filepath.Join(f.repos, "app.git"), filepath.Join(tg.ReposDir, "app.git")
	git(t, dst, "fsck", "--strict", "--no-dangling")
	for _, args := range [][]string{{"for-each-ref"}, {"symbolic-ref", "HEAD"}, {"rev-list", "--all", "--count"}} {
		if a, b := git(t, src, args...), git(t, dst, args...); a != b {
			t.Errorf("git %v differs:\n%s\nvs\n%s", args, a, b)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(tg.DataDir, "logs", "run1", "0.log")); string(got) != "step output\n" {
		t.Errorf("log: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(tg.DataDir, "artifacts", "run1", "0f0f")); string(got) != "artifact bytes" {
		t.Errorf("artifact: %q", got)
	}
	if fi, err := os.Stat(tg.HostKeyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("host key: %v %v", fi, err)
	}
	for _, d := range []string{tg.DataDir, tg.ReposDir} {
		for _, leftover := range []string{stagingDir, oldDir} {
			if _, err := os.Stat(filepath.Join(d, leftover)); err == nil {
				t.Errorf("%s left in %s", leftover, d)
			}
		}
	}
}

// TestRestoreRefusals: a running server, content without Force, damaged,
// truncated, hostile and newer archives are refused and change nothing;
// Force replaces the content.
func TestRestoreRefusals(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.archive(t)
	ctx := context.Background()

	tg := newTarget(t)
	if err := os.MkdirAll(tg.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(tg.DataDir, "old.txt")
	if err := os.WriteFile(old, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, bytes.NewReader(good), tg); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("non-empty data dir: %v", err)
	}
	keyOnly := newTarget(t)
	os.WriteFile(keyOnly.HostKeyPath, []byte("k"), 0o600)
	if _, err := Restore(ctx, bytes.NewReader(good), keyOnly); !errors.Is(err, ErrNotEmpty) {
		t.Errorf("existing host key: %v", err)
	}

	for name, archive := range map[string][]byte{
		"truncated": good[:len(good)*2/3],
		"garbage":   []byte("not a gzip stream at all"),
		"hostile":   tarGz(t, manifestEntry(t, FormatVersion), entry{"repos/../../evil", "x"}, entry{endName, "{}"}),
		"newer":     tarGz(t, manifestEntry(t, FormatVersion+1), entry{endName, "{}"}),
		"no end":    tarGz(t, manifestEntry(t, FormatVersion), entry{dbName, "x"}),
		"unknown":   tarGz(t, manifestEntry(t, FormatVersion), entry{"etc/passwd", "x"}, entry{endName, "{}"}),
		"bad db":    tarGz(t, manifestEntry(t, FormatVersion), entry{dbName, strings.Repeat("x", 8192)}, entry{endName, "{}"}),
	} {
		forced := tg
		forced.Force = true
		if _, err := Restore(ctx, bytes.NewReader(archive), forced); !errors.Is(err, ErrBadArchive) {
			t.Errorf("%s: %v", name, err)
		}
		if got, err := os.ReadFile(old); err != nil || string(got) != "keep me" {
			t.Fatalf("%s: the target changed: %q %v", name, got, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(tg.DataDir), "evil")); err == nil {
			t.Fatalf("%s: wrote outside the target", name)
		}
	}

	lock, err := boltstore.Open(filepath.Join(tg.DataDir, "kod.db"))
	if err != nil {
		t.Fatal(err)
	}
	forced := tg
	forced.Force = true
	if _, err := Restore(ctx, bytes.NewReader(good), forced); !errors.Is(err, ErrServerRunning) {
		t.Errorf("locked database: %v", err)
	}
	lock.Close()
	if _, err := Restore(ctx, bytes.NewReader(good), forced); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("force kept the old content: %v", err)
	}
	git(t, filepath.Join(tg.ReposDir, "app.git"), "fsck", "--no-dangling")
}

// TestBackupWhileRepacking: archives taken while git repacks and prunes the
// repository (files vanish mid-walk) and pushes land still restore to
// repositories whose every ref is complete.
func TestBackupWhileRepacking(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bare := filepath.Join(f.repos, "app.git")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() {
			if v := recover(); v != nil && v != errStop {
				panic(v)
			}
		}()
		gt := goroutineT{t}
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.commit(gt, 20)
			git(gt, f.work, "push", "-q", bare, "dev")
			git(gt, bare, "repack", "-a", "-d", "-q")
			git(gt, bare, "prune-packed")
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	deadline := time.Now().Add(4 * time.Second)
	for n := 0; n < 3 || time.Now().Before(deadline); n++ {
		data := f.archive(t)
		tg := newTarget(t)
		if _, err := Restore(context.Background(), bytes.NewReader(data), tg); err != nil {
			t.Fatal(err)
		}
		git(t, filepath.Join(tg.ReposDir, "app.git"), "fsck", "--connectivity-only", "--no-dangling")
	}
}

type entry struct{ name, body string }

func manifestEntry(t *testing.T, format int) entry {
	data, err := json.Marshal(Manifest{Format: format})
	if err != nil {
		t.Fatal(err)
	}
	return entry{manifestName, string(data)}
}

func tarGz(t *testing.T, entries ...entry) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Size: int64(len(e.body)), Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}
