package sshd

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	gl "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// addrLimiter counts what each remote address holds (connections or
// sessions) and refuses more than max at once.
type addrLimiter struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func newAddrLimiter(max int) *addrLimiter { return &addrLimiter{max: max, n: map[string]int{}} }

// acquire takes a slot for addr; ok is false when addr holds max already.
// release gives the slot back and may be called more than once.
func (l *addrLimiter) acquire(addr string) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[addr] >= l.max {
		return nil, false
	}
	l.n[addr]++
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.n[addr]--; l.n[addr] <= 0 {
			delete(l.n, addr)
		}
	}), true
}

// remoteHost is the host part of a remote address (the port changes with
// every connection).
func remoteHost(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitedConn releases its slots when closed, and keeps the socket
// in quick-ACK mode for the first reads (see quickAck).
type limitedConn struct {
	net.Conn
	release  func()
	onSignIn func()      // called once the client signed in
	authed   atomic.Bool // signed in
	reads    int         // only touched by the connection's reading goroutine
}

// signedIn records that the client signed in: the login grace time no
// longer applies and the connection leaves the unauthenticated count.
func (c *limitedConn) signedIn() {
	if c.authed.CompareAndSwap(false, true) && c.onSignIn != nil {
		c.onSignIn()
	}
}

// quickAckReads covers the handshake and authentication round trips, where
// OpenSSH's small packets would wait for delayed ACKs; bulk transfers after
// them do not need the extra system call per read.
const quickAckReads = 64

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.reads < quickAckReads {
		c.reads++
		quickAck(c.Conn)
	}
	return n, err
}

// Close closes the connection and gives its slot back (once).
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}

// gitProtocolEnvName is the one environment variable a client may pass on:
// git sends the wire protocol version in it (validated by GitProtocolEnv).
const gitProtocolEnvName = "GIT_PROTOCOL"

// sessionChannel is gliderlabs' session handler behind a filter of the
// channel's requests: every "env" request except a few GIT_PROTOCOL ones is
// refused before gliderlabs stores it, so nothing else the client sends as
// environment (LD_PRELOAD, GIT_CONFIG_*, ...) is kept, let alone passed on,
// and a client cannot grow the server's memory with endless env requests.
func (s *Server) sessionChannel(srv *gl.Server, conn *gossh.ServerConn, newChan gossh.NewChannel, ctx gl.Context) {
	gl.DefaultSessionHandler(srv, conn, &envFilter{NewChannel: newChan, max: maxEnvRequests, log: s.log, remote: conn.RemoteAddr().String()}, ctx)
}

type envFilter struct {
	gossh.NewChannel
	max    int
	log    *slog.Logger
	remote string
}

// Accept accepts the channel and forwards its requests, minus the refused
// env requests. The forwarding goroutine ends when the channel's request
// stream ends (the channel or the connection closed).
func (f *envFilter) Accept() (gossh.Channel, <-chan *gossh.Request, error) {
	ch, reqs, err := f.NewChannel.Accept()
	if err != nil {
		return ch, reqs, err
	}
	out := make(chan *gossh.Request)
	go func() {
		defer close(out)
		kept := 0
		for req := range reqs {
			if req.Type == "env" {
				var kv struct{ Key, Value string }
				if gossh.Unmarshal(req.Payload, &kv) != nil || kv.Key != gitProtocolEnvName || kept >= f.max {
					f.log.Debug("ssh env request refused", "remote", f.remote, "name", truncate(kv.Key, 64))
					_ = req.Reply(false, nil)
					continue
				}
				kept++
			}
			out <- req
		}
	}()
	return ch, out, nil
}
