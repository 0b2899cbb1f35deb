package sshd

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	gl "github.com/gliderlabs/ssh"
)

// connSet tracks the server's open connections, from accept to close
// (handshakes included), caps them per remote address, and drives a
// graceful shutdown. kod does its own shutdown instead of gliderlabs'
// Server.Shutdown, whose WaitGroup.Wait races with the Add of a connection
// finishing its handshake meanwhile.
type connSet struct {
	perAddr *addrLimiter
	mu      sync.Mutex
	closing bool
	ln      net.Listener
	open    map[*limitedConn]struct{}
	// unauthenticated counts the open connections not signed in yet;
	// refusedUnauth the refusals beyond the cap since the last log line.
	unauthenticated int
	refusedUnauth   int
	lastRefusalLog  time.Time
}

func newConnSet(maxPerAddr int) *connSet {
	return &connSet{perAddr: newAddrLimiter(maxPerAddr), open: map[*limitedConn]struct{}{}}
}

// Serve accepts connections on ln until Shutdown; it then returns
// gl.ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.conns.mu.Lock()
	if s.conns.closing {
		s.conns.mu.Unlock()
		ln.Close()
		return gl.ErrServerClosed
	}
	s.conns.ln = ln
	s.conns.mu.Unlock()
	err := s.srv.Serve(ln)
	s.conns.mu.Lock()
	defer s.conns.mu.Unlock()
	if s.conns.closing {
		return gl.ErrServerClosed
	}
	return err
}

// Shutdown stops accepting connections and waits for the open ones to end
// until ctx ends; then it closes them (their git processes are killed) and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.conns.mu.Lock()
	s.conns.closing = true
	ln := s.conns.ln
	s.conns.mu.Unlock()
	var err error
	if ln != nil {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.conns.count() > 0 {
		select {
		case <-ctx.Done():
			s.conns.closeAll()
			return errors.Join(err, ctx.Err(), s.closeServer())
		case <-tick.C:
		}
	}
	return errors.Join(err, s.closeServer())
}

// closeServer closes what gliderlabs still tracks; its listener may be
// closed already.
func (s *Server) closeServer() error {
	if err := s.srv.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// ctxKeyConn holds a connection's *limitedConn in its gliderlabs context.
type ctxKeyConnType struct{}

var ctxKeyConn ctxKeyConnType

// limitConn is gliderlabs' ConnCallback: it refuses connections during
// shutdown, beyond MaxPerAddr from one address and beyond
// MaxUnauthenticated not signed in yet server-wide, and tracks the others
// until they close. A connection that has not signed in within
// LoginGraceTime is closed then.
func (s *Server) limitConn(ctx gl.Context, conn net.Conn) net.Conn {
	c := s.conns
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return nil
	}
	if c.unauthenticated >= s.cfg.MaxUnauthenticated {
		c.refusedUnauth++ // logged at most once a minute: a flood must not flood the log
		if now := time.Now(); now.Sub(c.lastRefusalLog) >= time.Minute {
			s.log.Warn("ssh connections refused: too many connections have not signed in yet", "remote", conn.RemoteAddr().String(),
				"max", s.cfg.MaxUnauthenticated, "refused", c.refusedUnauth)
			c.refusedUnauth, c.lastRefusalLog = 0, now
		}
		return nil
	}
	release, ok := c.perAddr.acquire(remoteHost(conn.RemoteAddr()))
	if !ok {
		s.log.Warn("ssh connection refused: too many concurrent connections from one address", "remote", conn.RemoteAddr().String(), "max", s.cfg.MaxPerAddr)
		return nil
	}
	closed := func() {}
	if s.cfg.OnConn != nil {
		closed = s.cfg.OnConn()
	}
	lc := &limitedConn{Conn: conn}
	c.unauthenticated++
	// authDone ends the unauthenticated state once: signed in, or closed.
	authDone := sync.OnceFunc(func() {
		c.mu.Lock()
		c.unauthenticated--
		c.mu.Unlock()
	})
	grace := time.AfterFunc(s.cfg.LoginGraceTime, func() {
		if !lc.authed.Load() {
			s.log.Info("ssh connection closed: not signed in within the login grace time", "remote", conn.RemoteAddr().String(), "grace", s.cfg.LoginGraceTime)
			_ = lc.Close()
		}
	})
	lc.onSignIn = func() {
		grace.Stop()
		authDone()
	}
	lc.release = sync.OnceFunc(func() {
		grace.Stop()
		authDone()
		release()
		closed()
		c.mu.Lock()
		delete(c.open, lc)
		c.mu.Unlock()
	})
	c.open[lc] = struct{}{}
	ctx.SetValue(ctxKeyConn, lc)
	return lc
}

func (c *connSet) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.open)
}

func (c *connSet) closeAll() {
	c.mu.Lock()
	conns := make([]*limitedConn, 0, len(c.open))
	for lc := range c.open {
		conns = append(conns, lc)
	}
	c.mu.Unlock()
	for _, lc := range conns {
		_ = lc.Close()
	}
}
