package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/runner"
)

// localSource implements runner.Source over a working directory for
// `kod workflow FILE...`: the workflow files given, and a workspace made of
// the files git would commit now.
type localSource struct {
	root  string        // top of the working tree
	files []runner.File // the workflows to run
	inGit bool          // root is a git work tree
	// branch is the local branch the workspace's .git has HEAD on (the
	// run's branch); "" leaves HEAD detached.
	branch string
}

func (s *localSource) WorkflowFiles(context.Context, string, string) ([]runner.File, error) {
	return s.files, nil
}

// Archive writes the workspace as a tar stream with all history (see
// archive).
func (s *localSource) Archive(ctx context.Context, _, _ string, w io.Writer) error {
	return s.archive(ctx, 0, w)
}

// archive writes the workspace as a tar stream: in a git work tree, the
// tracked files as they are on disk (uncommitted changes included, deleted
// files left out) plus untracked files that .gitignore does not exclude,
// then, when HEAD names a commit, a .git made as a server's checkout makes
// it for HEAD (gitsvc.Git.Checkout: depth commits of history, 0 = all, the
// tags in it, HEAD on s.branch, an index of HEAD's tree, so `git status`
// shows the uncommitted changes and `git describe` works); elsewhere every
// file under root except .git. Symbolic links are kept as links; sockets,
// devices and nested repositories are skipped.
func (s *localSource) archive(ctx context.Context, depth int, w io.Writer) error {
	paths, err := s.list(ctx)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	for _, p := range paths {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.add(tw, dirs, p); err != nil {
			return err
		}
	}
	if head := gitOutput(ctx, s.root, "rev-parse", "--verify", "-q", "HEAD^{commit}"); s.inGit && head != "" {
		if err := s.addGitDir(ctx, head, depth, tw); err != nil {
			return fmt.Errorf("making the workspace's .git: %w", err)
		}
	}
	return tw.Close()
}

// addGitDir writes to tw the .git entries of a server-style checkout of
// commit head (its tree's entries are skipped: the working tree is already
// in), read from the repository's common git directory (that of the main
// work tree when root is a linked one).
func (s *localSource) addGitDir(ctx context.Context, head string, depth int, tw *tar.Writer) error {
	gitDir := gitOutput(ctx, s.root, "rev-parse", "--git-common-dir")
	if gitDir == "" {
		return fmt.Errorf("no git directory found for %s", s.root)
	}
	if !filepath.IsAbs(gitDir) { // relative to root
		gitDir = filepath.Join(s.root, gitDir)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := (&gitsvc.Git{}).Checkout(ctx, gitDir, gitsvc.CheckoutOptions{Commit: head, Branch: s.branch, Depth: depth}, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	copyErr := copyGitEntries(tw, tar.NewReader(pr))
	if copyErr != nil {
		cancel()
		pr.CloseWithError(copyErr)
	}
	return errors.Join(copyErr, <-done)
}

// copyGitEntries copies the entries of tr under .git/ to tw.
func copyGitEntries(tw *tar.Writer, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if !strings.HasPrefix(hdr.Name, ".git/") {
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// list returns the slash-separated paths to archive, relative to root.
func (s *localSource) list(ctx context.Context) ([]string, error) {
	if s.inGit {
		cmd := exec.CommandContext(ctx, "git", "-C", s.root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("listing the files of %s: %v: %s", s.root, err, strings.TrimSpace(stderr.String()))
		}
		var paths []string
		seen := map[string]bool{}
		for _, p := range strings.Split(string(out), "\x00") {
			if p != "" && !seen[p] { // ls-files repeats paths with merge conflicts
				seen[p] = true
				paths = append(paths, p)
			}
		}
		return paths, nil
	}
	var paths []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			rel, err := filepath.Rel(s.root, p)
			if err != nil {
				return err
			}
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	return paths, err
}

// add writes one file (with its parent directories, once each) to tw.
func (s *localSource) add(tw *tar.Writer, dirs map[string]bool, rel string) error {
	full := filepath.Join(s.root, filepath.FromSlash(rel))
	fi, err := os.Lstat(full)
	if errors.Is(err, os.ErrNotExist) {
		return nil // tracked but deleted in the working tree
	}
	if err != nil {
		return err
	}
	mode := fi.Mode()
	if !mode.IsRegular() && mode&fs.ModeSymlink == 0 {
		return nil
	}
	if err := writeParents(tw, dirs, rel); err != nil {
		return err
	}
	hdr := &tar.Header{Name: rel, ModTime: fi.ModTime().Truncate(time.Second), Format: tar.FormatPAX}
	if mode&fs.ModeSymlink != 0 {
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		return tw.WriteHeader(hdr)
	}
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o644
	if mode&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("archiving %s (did it change while being read?): %w", rel, err)
	}
	return nil
}

// writeParents writes the directories above rel not written yet, outermost
// first.
func writeParents(tw *tar.Writer, dirs map[string]bool, rel string) error {
	var missing []string
	for d := path.Dir(rel); d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		dirs[missing[i]] = true
		hdr := &tar.Header{Name: missing[i] + "/", Typeflag: tar.TypeDir, Mode: 0o755, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	return nil
}

var _ runner.Source = (*localSource)(nil)
