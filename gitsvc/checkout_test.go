package gitsvc

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// checkoutRepo makes a bare repository whose main branch has five commits,
// an annotated tag v1.0 on the second, a lightweight tag light on the
// fourth, a tag on a side branch that main does not reach, and at the tip
// an export-ignore file, an export-subst file, a symlink and an executable.
// It returns the bare directory and the tip commit.
func checkoutRepo(t *testing.T) (bare, tip string) {
	t.Helper()
	work := t.TempDir()
	git := gitIn(t, work)
	git("init", "-q", "-b", "main")
	write := func(name, body string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 5; i++ {
		write("n", strings.Repeat("x", i)+"\n", 0o644)
		if i == 5 {
			write(".gitattributes", "ignored.txt export-ignore\nversion.txt export-subst\n", 0o644)
			write("ignored.txt", "not in archives\n", 0o644)
			write("version.txt", "$Format:%H$\n", 0o644)
			write("bin/run.sh", "#!/bin/sh\necho run\n", 0o755)
			write("sub dir/ü file.txt", "unicode\n", 0o644)
			if err := os.Symlink("bin/run.sh", filepath.Join(work, "link")); err != nil {
				t.Fatal(err)
			}
		}
		git("add", "-A")
		git("commit", "-qm", "commit "+strings.Repeat("i", i))
		switch i {
		case 2:
			git("tag", "-a", "-m", "release", "v1.0")
		case 4:
			git("tag", "light")
		}
	}
	git("checkout", "-q", "-b", "side", "HEAD~1")
	write("side", "s\n", 0o644)
	git("add", "-A")
	git("commit", "-qm", "side")
	git("tag", "-a", "-m", "side", "v9.9")
	git("checkout", "-q", "main")
	bare = filepath.Join(t.TempDir(), "r.git")
	git("clone", "-q", "--bare", work, bare)
	return bare, git("rev-parse", "main")
}

// gitIn returns a function running git in dir, failing the test on error.
func gitIn(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x",
			"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(bytes.TrimSpace(out))
	}
}

// extract checks out into a fresh directory with the host's tar.
func extract(t *testing.T, bare string, opt CheckoutOptions) string {
	t.Helper()
	var buf bytes.Buffer
	if err := (&Git{}).Checkout(context.Background(), bare, opt, &buf); err != nil {
		t.Fatalf("Checkout: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command("tar", "-x", "-C", dir)
	cmd.Stdin = &buf
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	return dir
}

func TestCheckoutIsARealWorkingTree(t *testing.T) {
	t.Parallel()
	bare, tip := checkoutRepo(t)
	dir := extract(t, bare, CheckoutOptions{Commit: tip, Branch: "main", RemoteURL: "http://kod.example/r.git"})
	git := gitIn(t, dir)
	for _, c := range []struct{ args, want string }{
		{"describe --tags", "light-1-g" + tip[:7]},
		{"describe", "v1.0-3-g" + tip[:7]},
		{"log -1 --format=%H", tip},
		{"status --porcelain", ""},
		{"rev-parse --abbrev-ref HEAD", "main"},
		{"rev-list --count HEAD", "5"},
		{"remote get-url origin", "http://kod.example/r.git"},
		{"rev-parse --abbrev-ref main@{upstream}", "origin/main"},
		{"tag --list", "light\nv1.0"},
		{"fsck --no-progress --no-dangling", ""},
	} {
		if got := git(strings.Fields(c.args)...); got != c.want {
			t.Errorf("git %s = %q, want %q", c.args, got, c.want)
		}
	}
	for name, want := range map[string]string{"ignored.txt": "not in archives\n", "version.txt": "$Format:%H$\n", "bin/run.sh": "#!/bin/sh\necho run\n"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/run.sh")); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("bin/run.sh not executable: %v %v", fi, err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "bin/run.sh" {
		t.Errorf("link -> %q, %v", target, err)
	}
}

func TestCheckoutDepth(t *testing.T) {
	t.Parallel()
	bare, tip := checkoutRepo(t)
	dir := extract(t, bare, CheckoutOptions{Commit: tip, Branch: "main", Depth: 2})
	git := gitIn(t, dir)
	for _, c := range []struct{ args, want string }{
		{"rev-list --count HEAD", "2"},
		{"rev-parse --is-shallow-repository", "true"},
		{"tag --list", "light"},
		{"describe --tags", "light-1-g" + tip[:7]},
		{"status --porcelain", ""},
		{"fsck --no-progress --no-dangling", ""},
	} {
		if got := git(strings.Fields(c.args)...); got != c.want {
			t.Errorf("depth 2: git %s = %q, want %q", c.args, got, c.want)
		}
	}
	// A depth beyond the history is all of it, not shallow.
	dir = extract(t, bare, CheckoutOptions{Commit: tip, Depth: 50})
	git = gitIn(t, dir)
	if got := git("rev-parse", "--is-shallow-repository"); got != "false" {
		t.Errorf("depth 50 of 5 commits: shallow = %s", got)
	}
	if got := git("status", "--porcelain", "--branch"); got != "## HEAD (no branch)" {
		t.Errorf("without a branch: status %q, want a detached HEAD", got)
	}
}

func TestCheckoutRefusesBadInput(t *testing.T) {
	t.Parallel()
	bare, tip := checkoutRepo(t)
	for _, opt := range []CheckoutOptions{
		{Commit: "0000000000000000000000000000000000000000"},
		{Commit: "-rf"},
		{Commit: tip, Branch: "a..b"},
		{Commit: tip, Depth: -1},
		{Commit: tip, RemoteURL: "http://x\n[core]"},
	} {
		var buf bytes.Buffer
		if err := (&Git{}).Checkout(context.Background(), bare, opt, &buf); err == nil || buf.Len() > 0 {
			t.Errorf("Checkout(%+v) = %v with %d bytes written, want an error and nothing written", opt, err, buf.Len())
		}
	}
}

// The temporary directory may be on another file system than the
// repositories (tmpfs /tmp in the server image): pack-objects' rename of
// its temporary file must not cross it.
func TestCheckoutWithTempDirOnAnotherFileSystem(t *testing.T) {
	bare, tip := checkoutRepo(t)
	var a, b syscall.Stat_t
	if syscall.Stat(bare, &a) != nil || syscall.Stat("/dev/shm", &b) != nil || a.Dev == b.Dev {
		t.Skip("needs /dev/shm on another file system than the test's temporary directory")
	}
	t.Setenv("TMPDIR", "/dev/shm")
	dir := extract(t, bare, CheckoutOptions{Commit: tip, Branch: "main"})
	if got := gitIn(t, dir)("status", "--porcelain"); got != "" {
		t.Errorf("status %q", got)
	}
}
