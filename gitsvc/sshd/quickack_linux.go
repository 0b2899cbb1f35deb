package sshd

import (
	"net"
	"syscall"
)

// quickAck asks Linux to acknowledge what was just read at once instead
// of delaying the ACK (up to 40 ms). OpenSSH does not set TCP_NODELAY on
// non-interactive sessions such as git's, so without this its second small
// packet of a handshake round waits for our delayed ACK: twice per
// connection, about 80 ms in all. Linux leaves quick-ACK mode on its own,
// so it is set again after every read. Errors are ignored: it is only a
// latency hint.
func quickAck(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
