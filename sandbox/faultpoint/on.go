//go:build kodfaults

package faultpoint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/kod-forge/kod/sandbox"
)

var (
	serverMu      sync.Mutex
	serverBackend *Backend // set by Wrap
)

// Hit asks the controlling test what to do at runner point p: it returns
// once the test says so; a failure arms the next backend call of the run.
func Hit(ctx context.Context, p Point, s Site) {
	if err := Dial(ctx, p, s); err != nil {
		serverMu.Lock()
		b := serverBackend
		serverMu.Unlock()
		if b != nil {
			b.Arm(s.Run, err)
		}
	}
}

// Wrap returns b wrapped in a Backend asking the controlling test at every
// point, or b itself when no test controls the server.
func Wrap(b sandbox.Backend) sandbox.Backend {
	if os.Getenv(SocketEnv) == "" {
		return b
	}
	w := &Backend{Inner: b, At: Dial}
	serverMu.Lock()
	serverBackend = w
	serverMu.Unlock()
	return w
}

// Dial is the Func of a server built with the kodfaults tag: it sends
// "<point> <run> <step>\n" to the socket named by KOD_FAULT_SOCKET and
// waits for one line: "go" (nil) or "fail" (an injected engine failure).
// The wait is the pause: the test answers when it has applied its fault.
// Without the variable, or when the test is gone, it returns nil.
func Dial(ctx context.Context, p Point, s Site) error {
	path := os.Getenv(SocketEnv)
	if path == "" {
		return nil
	}
	conn, err := (&net.Dialer{}).DialContext(context.WithoutCancel(ctx), "unix", path)
	if err != nil {
		return nil
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "%s %s %d\n", p, s.Run, s.Step); err != nil {
		return nil
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && !errors.Is(err, net.ErrClosed) && line == "" {
		return nil
	}
	if strings.TrimSpace(line) == "fail" {
		return Injected(p)
	}
	return nil
}
