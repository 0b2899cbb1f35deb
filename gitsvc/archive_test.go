package gitsvc

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// slowWriter takes nothing for a while on its first write, as a pod's attach
// stream on a loaded cluster can, then everything.
type slowWriter struct {
	delay time.Duration
	once  bool
	buf   bytes.Buffer
}

func (s *slowWriter) Write(p []byte) (int, error) {
	if !s.once {
		s.once = true
		time.Sleep(s.delay)
	}
	return s.buf.Write(p)
}

// TestArchiveToASlowReader: a reader that drains the archive only after git
// exited and longer than the command's WaitDelay (5 s) gets the whole tree;
// exec's own copy cut it short ("WaitDelay expired before I/O complete").
func TestArchiveToASlowReader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gitRun := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(bytes.TrimSpace(out))
	}
	gitRun("init", "-q", "-b", "main")
	// Less than a pipe buffer (64 KiB): git writes it all and exits while
	// the reader sleeps, which starts exec's WaitDelay.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<10)
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun("add", "big")
	gitRun("commit", "-qm", "x")
	commit := gitRun("rev-parse", "HEAD")

	w := &slowWriter{delay: 7 * time.Second}
	if err := (&Git{}).Archive(context.Background(), dir, commit, w); err != nil {
		t.Fatalf("archive to a slow reader: %v", err)
	}
	tr := tar.NewReader(&w.buf)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("the archive ended before the file: %v", err)
		}
		if h.Name != "big" {
			continue
		}
		got, err := io.ReadAll(tr)
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("the file came out %d bytes (want %d): %v", len(got), len(big), err)
		}
		return
	}
}
