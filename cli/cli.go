// Package cli is kod's command line client: the commands that talk to a
// server through the typed REST client (repo, token, keys, clone,
// workflow, backup, restore, doctor, init), and local runs of workflow
// files (kod workflow FILE).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

// app is what the client commands share: the global flags, where settings
// come from, the clock, and the standard streams (cobra's, so tests can
// swap them).
type app struct {
	flagServer string
	flagToken  string
	jsonOut    bool

	getenv func(string) string
	now    func() time.Time
	stdin  io.Reader
	// interactive reports whether stdin is a terminal that can be prompted.
	interactive func() bool
}

// newApp returns the app of the process: its environment, clock and stdin.
func newApp() *app {
	return &app{getenv: os.Getenv, now: time.Now, stdin: os.Stdin, interactive: func() bool { return isTerminal(os.Stdin) }}
}

// AddCommands registers the global client flags (-s/--server, -t/--token,
// --json) and every client command on root, reading settings from the
// process's environment, clock and stdin.
func AddCommands(root *cobra.Command) { addClientCommands(root, newApp()) }

// ExitError ends the process with Code without printing anything more
// (a failed run, a failed doctor check, a hook refusing a push).
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// addClientCommands is AddCommands with a (tests give their own).
func addClientCommands(root *cobra.Command, a *app) {
	pf := root.PersistentFlags()
	pf.StringVarP(&a.flagServer, "server", "s", "", "kod server URL (else KOD_SERVER_URL, the config file, http://localhost:3000)")
	pf.StringVarP(&a.flagToken, "token", "t", "", "API token (else KOD_API_TOKEN, then the config file)")
	pf.BoolVar(&a.jsonOut, "json", false, "print JSON instead of tables (for scripts)")
	root.AddCommand(
		newInitCmd(a), newRepoCmd(a), newTokenCmd(a), newKeysCmd(a), newCloneCmd(a),
		newWorkflowCmd(a), newBackupCmd(a), newRestoreCmd(a), newDoctorCmd(a), newGitCredentialCmd(a),
	)
	for _, path := range [][]string{{"clone"}, {"repo", "info"}, {"repo", "update"}, {"repo", "delete"},
		{"workflow", "status"}, {"workflow", "trigger"}, {"workflow", "show"}, {"workflow", "logs"}, {"workflow", "cancel"}} {
		if c, _, err := root.Find(path); err == nil && c.Name() == path[len(path)-1] {
			a.withRepoCompletion(c)
		}
	}
}

// client returns an API client from the resolved settings; it fails when no
// token is configured.
func (a *app) client() (*client.Client, error) {
	s, err := a.settings()
	if err != nil {
		return nil, err
	}
	if s.Token == "" {
		return nil, errors.New("no API token: run `kod init`, pass -t/--token or set KOD_API_TOKEN")
	}
	return client.New(s.Server, s.Token)
}

// run adapts a client command: it resolves the client, runs fn and turns
// API errors into messages with a hint of what to check.
func (a *app) run(fn func(ctx context.Context, c *client.Client, u *ui, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.client()
		if err != nil {
			return err
		}
		return explain(fn(cmd.Context(), c, a.ui(cmd), args))
	}
}

// explain adds what to check to errors whose cause is the setup rather than
// the request; other errors keep the server's message as it is.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var unreachable *client.UnreachableError
	var exit *ExitError
	switch {
	case errors.As(err, &exit):
		return err
	case errors.As(err, &unreachable):
		return fmt.Errorf("%w (set the server with `kod init`, -s/--server or KOD_SERVER_URL)", err)
	case errors.Is(err, forge.ErrUnauthorized):
		return fmt.Errorf("%w: the server refused the token (check `kod init`, -t/--token or KOD_API_TOKEN)", err)
	}
	return err
}

// exactArgs is cobra.ExactArgs with a message that names what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return fmt.Errorf("%s: missing %s (usage: %s)", cmd.CommandPath(), names[len(args)], cmd.UseLine())
		}
		if len(args) > len(names) {
			return fmt.Errorf("%s: unexpected argument %q (usage: %s)", cmd.CommandPath(), args[len(names)], cmd.UseLine())
		}
		return nil
	}
}
