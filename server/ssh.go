package server

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	gl "github.com/gliderlabs/ssh"

	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/gitsvc/sshd"
)

// sshServeStore is what serving SSH reads: the SSH server's store, and the
// keys, to report at start those that grant nothing.
type sshServeStore interface {
	sshd.Store
	ListKeys(ctx context.Context, username string) ([]*forge.SSHKey, error)
}

// newSSH builds the SSH server of git (nil with SSH off) with the host key
// at cfg.SSHHostKeyPath, created on first start.
func newSSH(cfg config.Config, store sshServeStore, git *gitsvc.Git, pushes sshd.PushStarter, onConn func() func(), reposDir string, log *slog.Logger) (*sshd.Server, error) {
	if !cfg.SSHEnabled {
		return nil, nil
	}
	key, created, loose, err := sshd.LoadOrCreateHostKey(cfg.SSHHostKeyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case created:
		log.Info("created the SSH host key", "path", cfg.SSHHostKeyPath)
	case loose:
		log.Warn("the SSH host key is readable by other users: chmod 600 it", "path", cfg.SSHHostKeyPath)
	}
	srv, err := sshd.New(sshd.Config{
		HostKey:            key,
		ReposDir:           reposDir,
		AnonymousRead:      cfg.SSHAnonymousRead,
		IdleTimeout:        cfg.SSHIdleTimeout,
		MaxSession:         cfg.SSHMaxSession,
		MaxPerAddr:         cfg.SSHMaxPerAddress,
		LoginGraceTime:     cfg.SSHLoginGraceTime,
		MaxUnauthenticated: cfg.SSHMaxUnauth,
		OnConn:             onConn,
	}, store, git, pushes, log)
	if err != nil {
		return nil, err
	}
	warnUnattributedKeys(store, log)
	return srv, nil
}

// stopSSH stops srv gracefully within ctx (then closes what is left) and
// waits for its Serve, whose result arrives on ended.
func stopSSH(ctx context.Context, srv *sshd.Server, ended <-chan error) error {
	err := srv.Shutdown(ctx)
	if serveErr := <-ended; !errors.Is(serveErr, gl.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}

// warnUnattributedKeys logs, once at start, how many SSH keys were stored
// before kod recorded which token adds a key: they grant nothing
// (forge.KeyPrincipal) until their users remove and add them again, and
// the operator of an upgraded server should hear of it before users do.
func warnUnattributedKeys(store sshServeStore, log *slog.Logger) {
	keys, err := store.ListKeys(context.Background(), "")
	if err != nil {
		log.Warn("listing SSH keys", "err", err)
		return
	}
	n, users := 0, []string{}
	for _, k := range keys {
		if k.AddedByTokenID == "" {
			n++
			users = append(users, k.Username)
		}
	}
	if n > 0 {
		slices.Sort(users)
		log.Warn("SSH keys stored before kod recorded which token adds a key grant nothing until they are removed and added again", "keys", n, "users", slices.Compact(users))
	}
}
