package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"

	gl "github.com/gliderlabs/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// sshServeStore is what serving SSH reads: the SSH server's store, and the
// keys, to report at start those that grant nothing.
type sshServeStore interface {
	gitsvc.SSHStore
	ListKeys(ctx context.Context, username string) ([]*forge.SSHKey, error)
}

// startSSH serves git over SSH on cfg.SSHHost:cfg.SSHPort (port 0 picks a
// free one) with the host key at cfg.SSHHostKeyPath, created on first
// start. It returns the bound address and a func that stops the server
// gracefully within its ctx (then closes what is left). With SSH disabled
// it returns "off" and a no-op.
func startSSH(cfg ServeConfig, store sshServeStore, git *gitsvc.Git, hooks gitsvc.PushStarter, reposDir string, log *slog.Logger) (string, func(context.Context) error, error) {
	if !cfg.SSHEnabled {
		return "off", func(context.Context) error { return nil }, nil
	}
	key, created, loose, err := gitsvc.LoadOrCreateHostKey(cfg.SSHHostKeyPath)
	if err != nil {
		return "", nil, err
	}
	switch {
	case created:
		log.Info("created the SSH host key", "path", cfg.SSHHostKeyPath)
	case loose:
		log.Warn("the SSH host key is readable by other users: chmod 600 it", "path", cfg.SSHHostKeyPath)
	}
	srv, err := gitsvc.NewSSHServer(gitsvc.SSHConfig{
		HostKey:            key,
		ReposDir:           reposDir,
		AnonymousRead:      cfg.SSHAnonymousRead,
		IdleTimeout:        cfg.SSHIdleTimeout,
		MaxSession:         cfg.SSHMaxSession,
		MaxPerAddr:         cfg.SSHMaxPerAddress,
		LoginGraceTime:     cfg.SSHLoginGraceTime,
		MaxUnauthenticated: cfg.SSHMaxUnauth,
	}, store, git, hooks, log)
	if err != nil {
		return "", nil, err
	}
	warnUnattributedKeys(store, log)
	addr := net.JoinHostPort(cfg.SSHHost, strconv.Itoa(cfg.SSHPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("listening for SSH on %s: %w", addr, err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop := func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if serveErr := <-served; !errors.Is(serveErr, gl.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		return err
	}
	return ln.Addr().String(), stop, nil
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
