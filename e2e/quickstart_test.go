package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kod-forge/kod/sandbox/docker/dockertest"
)

// quickStartBlock returns the first ```sh block under "## Quick start" in
// README.md.
func quickStartBlock(t *testing.T, readme string) string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no \"## Quick start\" section")
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("the quick start has no ```sh block")
	}
	block, _, ok := strings.Cut(after, "\n```")
	if !ok {
		t.Fatal("the quick start block does not end")
	}
	return block + "\n"
}

// copySource copies the files git knows of (tracked, and untracked ones
// not ignored) from root to dst: a checkout with nothing built.
func copySource(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the work tree, or not a file
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		o, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_EXCL, fi.Mode().Perm())
		if err == nil {
			_, err = io.Copy(o, in)
			err = errorsJoin(err, o.Close())
		}
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestQuickStart runs README.md's quick start, as one block, in bash with
// a fresh HOME, in a copy of the source tree with nothing built: the
// server is set up and started in the background, a repository is created,
// cloned and pushed to, and the run it queues completes. Only the port
// differs (a free one instead of 3000, through KOD_PORT), so the test
// never collides with a server of the machine. The Go caches stay the
// machine's: they are the toolchain's, not kod's.
func TestQuickStart(t *testing.T) {
	t.Parallel()
	dockertest.Require(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := quickStartBlock(t, string(readme))
	if !strings.Contains(block, "localhost:3000") {
		t.Fatalf("the quick start no longer uses localhost:3000; update this test:\n%s", block)
	}
	port := strconv.Itoa(freePort(t))
	block = strings.ReplaceAll(block, "localhost:3000", "localhost:"+port)

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	src, home := filepath.Join(tmp, "kod"), filepath.Join(tmp, "home")
	copySource(t, root, src)
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return name + "=" + strings.TrimSpace(string(out))
	}
	env := []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "TERM=dumb", "LANG=C.UTF-8",
		"KOD_PORT=" + port, "KOD_SSH_PORT=0",
		goEnv("GOCACHE"), goEnv("GOMODCACHE"), goEnv("GOPATH"),
	}
	for _, name := range []string{"DOCKER_HOST", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	stop := func() {
		cmd := exec.Command("scripts/serve", "--stop")
		cmd.Dir, cmd.Env = src, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("scripts/serve --stop: %v\n%s", err, out)
		}
		// Whatever happened, the server must not outlive the test.
		if data, err := os.ReadFile(filepath.Join(home, ".kod", "kod.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	t.Cleanup(stop)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// As pasted into a shell, except that the first failing command ends
	// it (set -e), so a broken line cannot hide behind later ones.
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-s")
	cmd.Dir, cmd.Env = src, env
	cmd.Stdin = strings.NewReader(block)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	logs, _ := os.ReadFile(filepath.Join(home, ".kod", "kod.log"))
	if err != nil {
		t.Fatalf("the quick start failed: %v\n--- block\n%s\n--- output\n%s\n--- server log\n%s", err, block, out.String(), logs)
	}
	got := out.String()
	for _, want := range []string{
		"kod is running at http://localhost:" + port,
		"admin token: " + filepath.Join(home, ".kod", "admin-token"),
		"queued workflow run",
		"hello from ",
		"built",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, got)
		}
	}
	t.Logf("quick start output:\n%s", got)
	if strings.Contains(got, "kod_") {
		t.Errorf("the quick start printed a token:\n%s", got)
	}
}
