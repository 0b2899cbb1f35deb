// Package gitsvc is kod's git transport: the one builder every git command
// goes through, bare-repository helpers, the smart HTTP handler, hook
// installation and the hook callback protocol between `kod hook` and the
// server.
package gitsvc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds git commands that have no timeout of their own.
const DefaultTimeout = 2 * time.Minute

// Git runs the git binary with a fixed, safe environment: no terminal
// prompts, no system or global config, C locale.
type Git struct {
	Bin string // path of the git binary; "" means "git" from PATH
	// OnServe, if set, is told of every git protocol request served:
	// transport "http" or "ssh" and the service (git-upload-pack,
	// git-receive-pack). It must not block.
	OnServe func(transport, service string)
}

// Served reports a protocol request to OnServe: transport "http" or
// "ssh" (the SSH server calls it).
func (g *Git) Served(transport string, svc Service) {
	if g.OnServe != nil {
		g.OnServe(transport, string(svc))
	}
}

// Cmd is one git invocation. Args are fixed options chosen by kod; values
// that come from users must pass through UserArg first.
type Cmd struct {
	Dir     string        // working directory / GIT_DIR parent; "" = current
	Args    []string      // git arguments, e.g. {"for-each-ref", "--format=%(refname)"}
	Env     []string      // extra "NAME=value" entries, appended to the safe base
	Timeout time.Duration // 0 means DefaultTimeout; negative means none (ctx only)
	Stdin   io.Reader
	Stdout  io.Writer // nil collects into the result of Output
	Stderr  io.Writer // nil keeps the last 64 KiB for the error
}

// Error is a failed git command with the tail of its stderr.
type Error struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *Error) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.Args, " "), msg)
}

func (e *Error) Unwrap() error { return e.Err }

// UserArg returns v if it is safe to pass as a git argument: non-empty, not
// starting with '-', and without NUL or newline. Otherwise an error.
func UserArg(v string) (string, error) {
	if v == "" || strings.HasPrefix(v, "-") || strings.ContainsAny(v, "\x00\n\r") {
		return "", fmt.Errorf("invalid git argument %q", v)
	}
	return v, nil
}

// BaseEnv is the environment every git process starts from.
func BaseEnv() []string {
	env := []string{
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"LC_ALL=C",
		"PATH=" + os.Getenv("PATH"),
	}
	if home := os.Getenv("HOME"); home != "" {
		env = append(env, "HOME="+home)
	}
	return env
}

// Command builds the exec.Cmd for c. The caller owns starting and waiting;
// the returned cancel must be called when done.
func (g *Git) Command(ctx context.Context, c *Cmd) (*exec.Cmd, context.CancelFunc) {
	cancel := context.CancelFunc(func() {})
	switch {
	case c.Timeout == 0:
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
	case c.Timeout > 0:
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
	}
	bin := g.Bin
	if bin == "" {
		bin = "git"
	}
	cmd := exec.CommandContext(ctx, bin, c.Args...)
	cmd.Dir = c.Dir
	cmd.Env = append(BaseEnv(), c.Env...)
	cmd.Stdin = c.Stdin
	cmd.Stdout = c.Stdout
	cmd.Stderr = c.Stderr
	cmd.WaitDelay = 5 * time.Second
	// git runs helpers of its own (git-remote-https, pack-objects, hooks);
	// on timeout or cancellation the whole process group goes, so no
	// helper outlives its command holding a connection or a lock.
	// When the server dies without cleaning up (kill -9), the kernel
	// kills the git it started (Linux).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dieWithParent(cmd.SysProcAttr)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd, cancel
}

// Run runs c and returns an *Error with stderr on failure.
func (g *Git) Run(ctx context.Context, c *Cmd) error {
	var stderr tailBuffer
	if c.Stderr == nil {
		c.Stderr = &stderr
	}
	cmd, cancel := g.Command(ctx, c)
	defer cancel()
	if err := cmd.Run(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr // killed because ctx ended: say so, not "signal: killed"
		}
		return &Error{Args: c.Args, Stderr: stderr.String(), Err: err}
	}
	return nil
}

// Output runs c and returns its stdout (for small outputs only).
func (g *Git) Output(ctx context.Context, c *Cmd) ([]byte, error) {
	var out bytes.Buffer
	c.Stdout = &out
	err := g.Run(ctx, c)
	return out.Bytes(), err
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct{ b []byte }

const tailMax = 64 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }
