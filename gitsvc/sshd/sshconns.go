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

// limitConn is gliderlabs' ConnCallback: it refuses connections during
// shutdown and beyond MaxPerAddr from one address, and tracks the others
// until they close.
func (s *Server) limitConn(_ gl.Context, conn net.Conn) net.Conn {
	c := s.conns
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
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
	lc.release = sync.OnceFunc(func() {
		release()
		closed()
		c.mu.Lock()
		delete(c.open, lc)
		c.mu.Unlock()
	})
	c.open[lc] = struct{}{}
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
