package gitsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ZeroOID is the all-zero object id git uses for "no object" in ref updates.
const ZeroOID = "0000000000000000000000000000000000000000"

// DefaultBranch is the branch HEAD points at in a new repository.
const DefaultBranch = "main"

// RepoPath returns <reposDir>/<name>.git after checking, with filepath.Rel,
// that the result stays inside reposDir. name must already be a valid
// repository name; the check is a second line of defence.
func RepoPath(reposDir, name string) (string, error) {
	if name == "" || name == "." || name == ".." {
		return "", fmt.Errorf("invalid repository name %q", name)
	}
	root, err := filepath.Abs(reposDir)
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, name+".git")
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") || strings.ContainsRune(rel, filepath.Separator) {
		return "", fmt.Errorf("repository path for %q escapes the repos dir", name)
	}
	return p, nil
}

// InitBare creates a bare repository at dir with HEAD on DefaultBranch.
func (g *Git) InitBare(ctx context.Context, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	return g.Run(ctx, &Cmd{Args: []string{"init", "--bare", "--quiet", "--initial-branch=" + DefaultBranch, "--", dir}})
}

// Branches returns the short names of refs/heads/*, sorted by git.
func (g *Git) Branches(ctx context.Context, dir string) ([]string, error) {
	out, err := g.Output(ctx, &Cmd{Dir: dir, Args: []string{"for-each-ref", "--format=%(refname)", "refs/heads/"}})
	if err != nil {
		return nil, err
	}
	var branches []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if b, ok := strings.CutPrefix(line, "refs/heads/"); ok {
			branches = append(branches, b)
		}
	}
	return branches, nil
}

// HeadBranch returns the branch HEAD points at, or "" if HEAD is detached.
func (g *Git) HeadBranch(ctx context.Context, dir string) (string, error) {
	out, err := g.Output(ctx, &Cmd{Dir: dir, Args: []string{"symbolic-ref", "--quiet", "HEAD"}})
	if err != nil {
		return "", err
	}
	b, _ := strings.CutPrefix(strings.TrimSpace(string(out)), "refs/heads/")
	return b, nil
}

// SetHead points HEAD at refs/heads/<branch>.
func (g *Git) SetHead(ctx context.Context, dir, branch string) error {
	ref, err := UserArg("refs/heads/" + branch)
	if err != nil {
		return err
	}
	return g.Run(ctx, &Cmd{Dir: dir, Args: []string{"symbolic-ref", "HEAD", ref}})
}

var oidRE = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// ResolveCommit returns the full commit id rev names in dir. rev may be a
// branch name or a (possibly abbreviated) object id; anything else is refused
// before git sees it. ok is false when rev names no commit.
func (g *Git) ResolveCommit(ctx context.Context, dir, rev string) (oid string, ok bool, err error) {
	if _, err := UserArg(rev); err != nil {
		return "", false, nil
	}
	out, err := g.Output(ctx, &Cmd{Dir: dir, Args: []string{"rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"}})
	if err != nil {
		if ge, isGit := err.(*Error); isGit && ge.Stderr == "" {
			return "", false, nil // --quiet: exit 1 without output means "no such commit"
		}
		return "", false, err
	}
	oid = strings.TrimSpace(string(out))
	if !oidRE.MatchString(oid) {
		return "", false, fmt.Errorf("git rev-parse returned %q", oid)
	}
	return oid, true, nil
}

// IsAncestor reports whether commit is reachable from rev in dir (`git
// merge-base --is-ancestor`): the commit rev names, or one of its
// ancestors. Both must name existing commits; user values pass UserArg.
func (g *Git) IsAncestor(ctx context.Context, dir, commit, rev string) (bool, error) {
	for _, v := range []string{commit, rev} {
		if _, err := UserArg(v); err != nil {
			return false, err
		}
	}
	err := g.Run(ctx, &Cmd{Dir: dir, Args: []string{"merge-base", "--is-ancestor", "--end-of-options", commit, rev}})
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false, nil // the documented "not an ancestor"
	}
	return false, err
}

// MaxWorkflowFileSize caps one workflow file, bytes.
const MaxWorkflowFileSize = 1 << 20

// WorkflowFile is one file read from .kod/workflows at a commit.
type WorkflowFile struct {
	Path string // repo-relative, e.g. ".kod/workflows/ci.toml"
	Data []byte
}

// ListFiles returns the paths of the regular files (blobs) directly inside
// dir (repo-relative, e.g. ".kod/workflows") at commit, sorted by git.
func (g *Git) ListFiles(ctx context.Context, repoDir, commit, dir string) ([]string, error) {
	commit, err := UserArg(commit)
	if err != nil {
		return nil, err
	}
	out, err := g.Output(ctx, &Cmd{Dir: repoDir, Args: []string{"ls-tree", "-z", "--end-of-options", commit, "--", dir + "/"}})
	if err != nil {
		return nil, err
	}
	var files []string
	for _, entry := range bytes.Split(out, []byte{0}) {
		// "<mode> SP <type> SP <object> TAB <path>"
		meta, name, ok := bytes.Cut(entry, []byte{'\t'})
		if !ok {
			continue
		}
		fields := strings.Fields(string(meta))
		if len(fields) == 3 && fields[1] == "blob" && (fields[0] == "100644" || fields[0] == "100755") {
			files = append(files, string(name))
		}
	}
	return files, nil
}

// FileTooLargeError is ReadFile's error for a file over its limit.
type FileTooLargeError struct {
	Path      string
	Size, Max int64 // bytes
}

func (e *FileTooLargeError) Error() string {
	return fmt.Sprintf("%s is %d bytes, more than the limit of %d", e.Path, e.Size, e.Max)
}

// ReadFile returns the content of file at commit, refusing files larger
// than max bytes with a *FileTooLargeError.
func (g *Git) ReadFile(ctx context.Context, repoDir, commit, file string, max int64) ([]byte, error) {
	spec, err := UserArg(commit + ":" + path.Clean(file))
	if err != nil {
		return nil, err
	}
	out, err := g.Output(ctx, &Cmd{Dir: repoDir, Args: []string{"cat-file", "-s", spec}})
	if err != nil {
		return nil, err
	}
	var size int64
	if _, err := fmt.Sscan(string(out), &size); err != nil {
		return nil, fmt.Errorf("reading size of %s: %w", file, err)
	}
	if size > max {
		return nil, &FileTooLargeError{Path: file, Size: size, Max: max}
	}
	return g.Output(ctx, &Cmd{Dir: repoDir, Args: []string{"cat-file", "blob", spec}})
}

// Archive streams the tree of commit as a tar archive to w.
func (g *Git) Archive(ctx context.Context, repoDir, commit string, w io.Writer) error {
	commit, err := UserArg(commit)
	if err != nil {
		return err
	}
	return g.stream(ctx, &Cmd{Dir: repoDir, Args: []string{"archive", "--format=tar", "--end-of-options", commit}, Timeout: 30 * time.Minute}, w)
}

// stream runs c with its stdout copied to w through a pipe of its own. With
// exec's own copy, a reader slower than the command's WaitDelay (5 s) at
// draining what git had already written when it exited (a pod's attach
// stream on a loaded cluster) cut the stream short with "WaitDelay expired
// before I/O complete". Here git's exit only closes the pipe's write end;
// the copy ends when w took everything, or when ctx ends.
func (g *Git) stream(ctx context.Context, c *Cmd, w io.Writer) error {
	pr, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	c.Stdout = pw
	copied := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, pr)
		pr.Close() // a failed write to w makes git's next write fail, so it exits
		copied <- err
	}()
	runErr := g.Run(ctx, c)
	pw.Close()
	select {
	case err := <-copied:
		if runErr == nil && err != nil {
			return fmt.Errorf("streaming git %s: %w", c.Args[0], err)
		}
	case <-ctx.Done():
		if runErr == nil {
			runErr = ctx.Err()
		}
	}
	return runErr
}
