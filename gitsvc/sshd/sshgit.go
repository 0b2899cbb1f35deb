package sshd

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"

	gl "github.com/gliderlabs/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// UploadArchive is `git archive --remote`, served over SSH only.
const UploadArchive gitsvc.Service = "git-upload-archive"

// errAnonymousPush refuses a push by the anonymous user before anything
// else is looked at.
var errAnonymousPush = forge.Forbidden("anonymous access is read-only: push with a registered SSH key")

// runGit runs git upload-pack, receive-pack or upload-archive for the
// repository at path, wired to the session: stdin from the client, stdout
// to it, stderr to its stderr channel. The process gets the builder's safe
// environment plus only a validated GIT_PROTOCOL from the client and, for
// a push, the hook credential of HookServer.BeginPush (Transport "ssh"), so
// pre-receive applies the same branch protection as over HTTP. It returns
// git's exit status and a func that waits for the stdin copy to end (call
// it after the session's exit status was sent).
func (s *Server) runGit(ctx context.Context, sess gl.Session, user *sshUser, svc gitsvc.Service, path string) (int, func()) {
	if svc == gitsvc.ReceivePack && user.p.Anonymous {
		return s.finish(sess, user, errAnonymousPush), noWait
	}
	act := actSSHRead
	if svc == gitsvc.ReceivePack {
		act = actSSHWrite
	}
	name, err := repoNameFromPath(path)
	if err != nil {
		return s.finish(sess, user, err), noWait
	}
	repo, dir, err := s.repoFor(ctx, user, act, name)
	if err != nil {
		return s.finish(sess, user, err), noWait
	}
	s.git.Served("ssh", svc)
	env := gitsvc.GitProtocolEnv(clientGitProtocol(sess.Environ()))
	if svc == gitsvc.ReceivePack {
		hookEnv, end := s.pushes.BeginPush(&gitsvc.Push{RepoID: repo.ID, Repo: repo.Name, Principal: user.p, Transport: "ssh"})
		defer end()
		env = append(env, hookEnv...)
	}
	args := []string{strings.TrimPrefix(string(svc), "git-")}
	if svc == gitsvc.UploadPack {
		args = append(args, "--strict")
	}
	args = append(args, dir) // absolute: never starts with '-'
	cmd, cancel := s.git.Command(ctx, &gitsvc.Cmd{Dir: dir, Args: args, Env: env, Stdout: sess, Stderr: sess.Stderr(), Timeout: s.cfg.MaxSession})
	defer cancel()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return s.finish(sess, user, err), noWait
	}
	if err := cmd.Start(); err != nil {
		return s.finish(sess, user, err), noWait
	}
	// Copy stdin ourselves: exec would wait for a copy that only ends when
	// the client closes its side, which it does after our exit status.
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(stdin, sess)
		_ = stdin.Close()
	}()
	err = cmd.Wait()
	return exitCode(err), func() { <-copied }
}

// clientGitProtocol is the last GIT_PROTOCOL the client sent ("" if none).
func clientGitProtocol(environ []string) string {
	v := ""
	for _, e := range environ {
		if val, ok := strings.CutPrefix(e, gitProtocolEnvName+"="); ok {
			v = val
		}
	}
	return v
}

// exitCode maps a git process's end to the session's exit status.
func exitCode(err error) int {
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() > 0:
		return exit.ExitCode()
	}
	return 1
}
