package sshd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	gl "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc"
)

// Defaults of Config's limits.
const (
	// DefaultIdleTimeout closes a connection on which nothing was read
	// or written for this long. git reports progress while it packs, so a
	// long clone or push is never idle for minutes.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxSession is the longest a connection may last, whatever
	// it does; generous enough for a multi-gigabyte push on a slow link.
	DefaultMaxSession = 2 * time.Hour
	// DefaultMaxPerAddr caps concurrent connections, and concurrent
	// sessions, from one remote address.
	DefaultMaxPerAddr = 10
	// DefaultLoginGraceTime is how long a connection may take to sign in
	// (OpenSSH's LoginGraceTime is 2 minutes; a git client signs in within
	// a second or two). A connection still unauthenticated then is closed.
	DefaultLoginGraceTime = 30 * time.Second
	// DefaultMaxUnauthenticated caps the connections, server-wide, that
	// have not signed in yet (OpenSSH's MaxStartups full limit is 100).
	// Beyond it new connections are closed at once, so silent connections
	// from many addresses cannot pile up.
	DefaultMaxUnauthenticated = 100
)

// Config configures the SSH server. Zero durations and counts take the
// defaults above.
type Config struct {
	HostKey       gossh.Signer
	ReposDir      string        // bare repositories live at <ReposDir>/<name>.git
	AnonymousRead bool          // Kod: KOD_SSH_ANONYMOUS_READ
	IdleTimeout   time.Duration // see DefaultIdleTimeout
	MaxSession    time.Duration // see DefaultMaxSession
	MaxPerAddr    int           // see DefaultMaxPerAddr
	// LoginGraceTime and MaxUnauthenticated: see DefaultLoginGraceTime
	// and DefaultMaxUnauthenticated.
	LoginGraceTime     time.Duration
	MaxUnauthenticated int
	ServerVersion      string // sent before the handshake; "" = "kod"
	Clock              func() time.Time
	// OnConn, if set, is called for every accepted connection and returns
	// the func called once when it closes. It must not block.
	OnConn func() (closed func())
}

// maxEnvRequests caps the GIT_PROTOCOL env requests kept per session.
const maxEnvRequests = 8

// Store is what the SSH server reads: keys to sign users in, tokens to
// derive their access, repositories to serve.
type Store interface {
	KeyByFingerprint(ctx context.Context, fp string) (*forge.SSHKey, error)
	ListTokens(ctx context.Context) ([]*forge.Token, error)
	GetRepo(ctx context.Context, name string) (*forge.Repo, error)
	ListRepos(ctx context.Context) ([]*forge.Repo, error)
}

// PushStarter registers a push with the hook server (HookServer.BeginPush)
// so that git receive-pack's pre-receive hook applies the same policy as
// over HTTP.
type PushStarter interface {
	BeginPush(p *gitsvc.Push) (env []string, end func())
}

// Extensions the authentication callbacks put into the connection's
// gossh.Permissions: the only place identity is read from, and only for the
// method that actually succeeded.
const (
	extVerifiedKey = "kod-verified-key-fingerprint" // set after the signature was verified
	extAnonymous   = "kod-anonymous"                // set by the "none" method for anonymous read
)

// Server serves git over SSH (gliderlabs/ssh): public-key sign-in with
// keys from the store, anonymous read when enabled, the git commands and
// kod's own commands (repos, info). See the session handler for how
// identity is resolved.
type Server struct {
	cfg      Config
	store    Store
	git      *gitsvc.Git
	pushes   PushStarter
	log      *slog.Logger
	srv      *gl.Server
	conns    *connSet
	sessions *addrLimiter
}

// New returns a server with cfg; Serve starts it.
func New(cfg Config, store Store, git *gitsvc.Git, pushes PushStarter, log *slog.Logger) (*Server, error) {
	if cfg.HostKey == nil {
		return nil, errors.New("ssh: no host key")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxSession <= 0 {
		cfg.MaxSession = DefaultMaxSession
	}
	if cfg.MaxPerAddr <= 0 {
		cfg.MaxPerAddr = DefaultMaxPerAddr
	}
	if cfg.LoginGraceTime <= 0 {
		cfg.LoginGraceTime = DefaultLoginGraceTime
	}
	if cfg.MaxUnauthenticated <= 0 {
		cfg.MaxUnauthenticated = DefaultMaxUnauthenticated
	}
	if cfg.ServerVersion == "" {
		cfg.ServerVersion = "kod"
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	s := &Server{
		cfg: cfg, store: store, git: git, pushes: pushes, log: log.With("component", "ssh"),
		conns: newConnSet(cfg.MaxPerAddr), sessions: newAddrLimiter(cfg.MaxPerAddr),
	}
	s.srv = &gl.Server{
		Handler:                  s.handleSession,
		HostSigners:              []gl.Signer{cfg.HostKey},
		Version:                  cfg.ServerVersion,
		PublicKeyHandler:         s.knownKey,
		ServerConfigCallback:     s.serverConfig,
		ConnCallback:             s.limitConn,
		ConnectionFailedCallback: s.connFailed,
		IdleTimeout:              cfg.IdleTimeout,
		MaxTimeout:               cfg.MaxSession,
		ChannelHandlers:          map[string]gl.ChannelHandler{"session": s.sessionChannel},
		RequestHandlers:          map[string]gl.RequestHandler{},
		SubsystemHandlers:        map[string]gl.SubsystemHandler{},
	}
	return s, nil
}

// knownKey is the public-key callback. It only looks the key up: it may
// be called for keys the client offers and never signs with
// (CVE-2024-45337), so it records nothing about who the user is.
func (s *Server) knownKey(ctx gl.Context, key gl.PublicKey) bool {
	fp := forge.Fingerprint(key)
	_, err := s.store.KeyByFingerprint(ctx, fp)
	switch {
	case err == nil:
		return true
	case errors.Is(err, forge.ErrNotFound):
		s.log.Warn("ssh authentication failed: unknown key", "remote", ctx.RemoteAddr().String(), "user", ctx.User(), "fingerprint", fp)
	default:
		s.log.Error("ssh key lookup", "remote", ctx.RemoteAddr().String(), "err", err)
	}
	return false
}

// serverConfig adds to gliderlabs' configuration what it has no option
// for: recording the key whose signature was verified, the "none" method
// for anonymous read, and logging of failed attempts.
func (s *Server) serverConfig(ctx gl.Context) *gossh.ServerConfig {
	lc, _ := ctx.Value(ctxKeyConn).(*limitedConn)
	return &gossh.ServerConfig{
		NoClientAuth: true, // decided per user by NoClientAuthCallback
		NoClientAuthCallback: func(conn gossh.ConnMetadata) (*gossh.Permissions, error) {
			perms, err := s.anonymousAuth(conn)
			if err == nil && lc != nil {
				lc.signedIn()
			}
			return perms, err
		},
		VerifiedPublicKeyCallback: func(_ gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			if lc != nil {
				lc.signedIn() // the signature is verified: this method succeeds
			}
			return &gossh.Permissions{Extensions: map[string]string{extVerifiedKey: forge.Fingerprint(key)}}, nil
		},
		AuthLogCallback: s.logAuth,
	}
}

// anonymousUsers are the login names of anonymous read (Kod: anonymous).
var anonymousUsers = map[string]bool{"anonymous": true, "anon": true}

// anonymousAuth is the "none" method: it succeeds only for the anonymous
// login names and only when anonymous read is on.
func (s *Server) anonymousAuth(conn gossh.ConnMetadata) (*gossh.Permissions, error) {
	if !s.cfg.AnonymousRead || !anonymousUsers[conn.User()] {
		return nil, errors.New("ssh: public key required")
	}
	return &gossh.Permissions{Extensions: map[string]string{extAnonymous: "1"}}, nil
}

func (s *Server) logAuth(conn gossh.ConnMetadata, method string, err error) {
	switch {
	case err == nil && method == "none":
		s.log.Info("ssh anonymous sign-in", "remote", conn.RemoteAddr().String(), "user", conn.User())
	case err == nil, method == "publickey": // unknown keys are logged with their fingerprint by knownKey
	case method == "none":
		s.log.Debug("ssh none method refused", "remote", conn.RemoteAddr().String(), "user", conn.User())
	default:
		s.log.Warn("ssh authentication failed", "remote", conn.RemoteAddr().String(), "user", conn.User(), "method", method, "err", err)
	}
}

func (s *Server) connFailed(conn net.Conn, err error) {
	s.log.Debug("ssh connection ended before a session", "remote", conn.RemoteAddr().String(), "err", err)
}
