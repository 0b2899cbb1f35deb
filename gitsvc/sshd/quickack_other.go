//go:build !linux

package sshd

import "net"

// quickAck is Linux-only (TCP_QUICKACK); elsewhere it does nothing.
func quickAck(net.Conn) {}
