package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	gl "github.com/gliderlabs/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// sshUsage is the help text of the SSH commands.
const sshUsage = `Commands:
  repos (or list, ls, help, nothing)  list the repositories you can read
  info <repo>                         name, default branch (*) and branches
  git clone ssh://<user>@<host>:<port>/<repo>.git
`

var (
	actSSHRead  = forge.Action{Perm: forge.PermRepoRead}
	actSSHWrite = forge.Action{Perm: forge.PermRepoWrite}
)

// sshGitServices are the git commands served over SSH.
var sshGitServices = map[gitsvc.Service]bool{gitsvc.UploadPack: true, gitsvc.ReceivePack: true, UploadArchive: true}

func noWait() {}

// dispatch runs the session's command and returns its exit status and a
// func to call after the session's exit status was sent (it waits for
// what the command still copies from the client).
func (s *Server) dispatch(ctx context.Context, sess gl.Session, user *sshUser) (int, func()) {
	args, err := splitCommand(sess.RawCommand())
	if err != nil {
		s.fail(sess, user.name, forge.Invalid("%v", err))
		return 1, noWait
	}
	if len(args) >= 2 && args[0] == "git" && sshGitServices[gitsvc.Service("git-"+args[1])] {
		args = append([]string{"git-" + args[1]}, args[2:]...) // "git upload-pack 'x.git'"
	}
	name := ""
	if len(args) > 0 {
		name = args[0]
	}
	switch name {
	case "", "help", "repos", "list", "ls":
		if name == "" || name == "help" {
			fmt.Fprintf(sess.Stderr(), "kod: signed in as %s\n%s", user.name, sshUsage)
		}
		return s.finish(sess, user, s.listRepos(ctx, sess, user)), noWait
	case "info":
		if len(args) != 2 {
			return s.finish(sess, user, forge.Invalid("usage: info <repo>")), noWait
		}
		return s.finish(sess, user, s.info(ctx, sess, user, args[1])), noWait
	case string(gitsvc.UploadPack), string(gitsvc.ReceivePack), string(UploadArchive):
		if len(args) != 2 {
			return s.finish(sess, user, forge.Invalid("usage: %s '<repo>.git'", name)), noWait
		}
		return s.runGit(ctx, sess, user, gitsvc.Service(name), args[1])
	}
	fmt.Fprintf(sess.Stderr(), "kod: unknown command %q\n%s", truncate(name, 100), sshUsage)
	return 1, noWait
}

// finish reports err (if any) and returns the exit status.
func (s *Server) finish(sess gl.Session, user *sshUser, err error) int {
	if err == nil {
		return 0
	}
	s.fail(sess, user.name, err)
	return 1
}

// listRepos writes the names of the repositories user can read, one per
// line, sorted.
func (s *Server) listRepos(ctx context.Context, w io.Writer, user *sshUser) error {
	if err := forge.Authorize(user.p, actSSHRead, nil); err != nil {
		return err
	}
	repos, err := s.store.ListRepos(ctx)
	if err != nil {
		return err
	}
	var names []string
	for _, r := range repos {
		if forge.Authorize(user.p, actSSHRead, user.withOwner(r)) == nil {
			names = append(names, r.Name)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return nil // client gone
		}
	}
	return nil
}

// info writes a repository's name, default branch and branches, the
// default one marked with "*":
//
//	name: my-project
//	default branch: main
//	branches:
//	* main
//	  feature
func (s *Server) info(ctx context.Context, w io.Writer, user *sshUser, path string) error {
	name, err := repoNameFromPath(path)
	if err != nil {
		return err
	}
	repo, dir, err := s.repoFor(ctx, user, actSSHRead, name)
	if err != nil {
		return err
	}
	branches, err := s.git.Branches(ctx, dir)
	if err != nil {
		return fmt.Errorf("listing branches of %s: %w", repo.Name, err)
	}
	def := ""
	if head, err := s.git.HeadBranch(ctx, dir); err == nil && slices.Contains(branches, head) {
		def = head
	} else if len(branches) > 0 {
		def = branches[0]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\n", repo.Name)
	if def == "" {
		b.WriteString("default branch: (none: the repository is empty)\nbranches: (none)\n")
	} else {
		fmt.Fprintf(&b, "default branch: %s\nbranches:\n", def)
	}
	for _, br := range branches {
		mark := " "
		if br == def {
			mark = "*"
		}
		fmt.Fprintf(&b, "%s %s\n", mark, br)
	}
	_, _ = io.WriteString(w, b.String())
	return nil
}

// repoNameFromPath turns the path of a git command into a repository
// name. Accepted: "name.git", "/name.git", "repos/name.git",
// "/repos/name.git" and "name", each with an optional trailing "/". The
// result must be a valid repository name (forge.ValidateRepoName), so
// nothing like "../x" or "a/b" gets through.
func repoNameFromPath(p string) (string, error) {
	name := strings.TrimSuffix(p, "/")
	name = strings.TrimPrefix(name, "/")
	name = strings.TrimPrefix(name, "repos/")
	name = strings.TrimSuffix(name, ".git")
	if forge.ValidateRepoName(name) != nil {
		return "", forge.Invalid("invalid repository path %q: use '<repo>.git', '/<repo>.git' or '/repos/<repo>.git'", truncate(p, 200))
	}
	return name, nil
}

// splitCommand splits an SSH command line into words the way a POSIX shell
// would for the quoting git and people use: blanks separate words; single
// quotes keep everything literally; double quotes keep everything but
// backslash-escaped '"' and '\'; a backslash outside quotes escapes the
// next character. Nothing is expanded. An unterminated quote is an error.
func splitCommand(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
			continue
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated ' in the command")
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			j := i + 1
			for ; j < len(line) && line[j] != '"'; j++ {
				if line[j] == '\\' && j+1 < len(line) && (line[j+1] == '"' || line[j+1] == '\\') {
					j++
				}
				cur.WriteByte(line[j])
			}
			if j >= len(line) {
				return nil, errors.New("unterminated \" in the command")
			}
			i = j
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		default:
			cur.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// truncate cuts s to n bytes for messages, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
