package sshd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	gl "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// sshUser is who a session acts as.
type sshUser struct {
	p    *forge.Principal
	name string // for messages and logs: the username, or "anonymous"
	// tokenUsers maps token ids to their usernames, to tell the owner of
	// repositories whose record predates Repo.OwnerUsername.
	tokenUsers map[string]string
}

// withOwner fills r.OwnerUsername (in memory) from its creating token when
// the record does not carry it, so owner-by-username holds for every
// repository whose creating token still exists.
func (u *sshUser) withOwner(r *forge.Repo) *forge.Repo {
	if r.OwnerUsername == "" && r.OwnerTokenID != "" {
		r.OwnerUsername = u.tokenUsers[r.OwnerTokenID]
	}
	return r
}

// handleSession runs one session's command (gliderlabs calls it once per
// exec or shell request). It resolves who the session acts as, runs the
// command and ends the session with the command's exit status.
func (s *Server) handleSession(sess gl.Session) {
	started := s.cfg.Clock()
	release, ok := s.sessions.acquire(remoteHost(sess.RemoteAddr()))
	if !ok {
		s.log.Warn("ssh session refused: too many concurrent sessions from one address", "remote", sess.RemoteAddr().String(), "max", s.cfg.MaxPerAddr)
		fmt.Fprintln(sess.Stderr(), "kod: too many concurrent sessions from your address; try again later")
		_ = sess.Exit(1)
		return
	}
	defer release()
	user, err := s.identify(sess)
	if err != nil {
		s.fail(sess, "", err)
		_ = sess.Exit(1)
		return
	}
	code, wait := s.dispatch(sess.Context(), sess, user)
	_ = sess.Exit(code)
	wait() // after Exit: the client closes its side, which ends stdin copying
	s.log.Info("ssh command", "user", user.name, "remote", sess.RemoteAddr().String(), "command", truncate(sess.RawCommand(), 200), "exit", code, "duration", s.cfg.Clock().Sub(started).Round(time.Millisecond))
}

// errKeyGone is a signed-in key that is not (or no longer) in the store.
var errKeyGone = forge.Forbidden("your SSH key is not registered with this server (it may have been removed)")

// identify resolves who the session acts as from what the SSH library
// recorded for the authentication method that succeeded on this
// connection, never from the public-key callback (which also sees keys a
// client offers without signing):
//
//   - "none" succeeded (anonymous read): the anonymous principal.
//   - a public key succeeded: VerifiedPublicKeyCallback stored the
//     fingerprint of the key whose signature x/crypto verified; it must
//     also be the key gliderlabs reports for the session. The key is then
//     looked up again, so a key removed over REST stops working for the
//     next command, on new and already open connections alike, and the
//     user's access is derived from the store as it is now, by
//     forge.KeyPrincipal (the token that added the key, or for a key an
//     admin added, the user's live tokens).
func (s *Server) identify(sess gl.Session) (*sshUser, error) {
	ctx := sess.Context()
	conn, _ := ctx.Value(gl.ContextKeyConn).(*gossh.ServerConn)
	if conn == nil || conn.Permissions == nil {
		return nil, errors.New("ssh session without an authenticated connection")
	}
	ext := conn.Permissions.Extensions
	if ext[extAnonymous] == "1" && ext[extVerifiedKey] == "" {
		if !s.cfg.AnonymousRead {
			return nil, forge.Forbidden("anonymous access is disabled")
		}
		return &sshUser{p: forge.AnonymousPrincipal(), name: "anonymous"}, nil
	}
	fp := ext[extVerifiedKey]
	if fp == "" {
		return nil, errors.New("ssh session without a verified key")
	}
	if pk := sess.PublicKey(); pk == nil || forge.Fingerprint(pk) != fp {
		return nil, fmt.Errorf("the session's public key is not the verified key %s", fp)
	}
	key, err := s.store.KeyByFingerprint(ctx, fp)
	if errors.Is(err, forge.ErrNotFound) {
		s.log.Warn("ssh session refused: key removed", "remote", sess.RemoteAddr().String(), "fingerprint", fp)
		return nil, errKeyGone
	}
	if err != nil {
		return nil, err
	}
	if key.Username == "" {
		return nil, errKeyGone
	}
	tokens, err := s.store.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	p, err := forge.KeyPrincipal(key, tokens, s.cfg.Clock().UnixMilli())
	if err != nil {
		s.log.Info("ssh session refused: the key grants nothing", "user", key.Username, "fingerprint", fp, "added_by_token", key.AddedByTokenID, "reason", err)
		return nil, err
	}
	u := &sshUser{p: p, name: key.Username, tokenUsers: map[string]string{}}
	for _, t := range tokens {
		u.tokenUsers[t.ID] = t.Username
	}
	return u, nil
}

// fail writes err to the session's stderr: its user message if it has
// one, else a reference to the server log, where the error is.
func (s *Server) fail(sess gl.Session, user string, err error) {
	msg, ok := forge.UserMessage(err)
	if !ok {
		id := errorID()
		s.log.Error("ssh command failed", "id", id, "user", user, "remote", sess.RemoteAddr().String(), "command", truncate(sess.RawCommand(), 200), "err", err)
		msg = "internal error (reference " + id + ")"
	}
	fmt.Fprintf(sess.Stderr(), "kod: %s\n", msg)
}

func errorID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// repoFor loads the repository named by a command and authorises a on it
// with forge.Authorize, the same decision as over HTTP: the permission
// first, then access (ErrNotFound for repositories the user cannot see).
func (s *Server) repoFor(ctx context.Context, user *sshUser, a forge.Action, name string) (*forge.Repo, string, error) {
	if err := forge.Authorize(user.p, a, nil); err != nil {
		return nil, "", err
	}
	repo, err := s.store.GetRepo(ctx, name)
	if err != nil {
		return nil, "", err
	}
	if err := forge.Authorize(user.p, a, user.withOwner(repo)); err != nil {
		return nil, "", err
	}
	dir, err := gitsvc.RepoPath(s.cfg.ReposDir, repo.Name)
	if err != nil {
		return nil, "", err
	}
	return repo, dir, nil
}
