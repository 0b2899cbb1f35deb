package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kod-forge/kod/client"
)

func newInitCmd(a *app) *cobra.Command {
	var tokenStdin, noVerify bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Save the server URL and API token to ~/.kod/config.json",
		Long: `Save the server URL and API token the client commands use, in
~/.kod/config.json (mode 0600; KOD_HOME or KOD_CONFIG move it).

On a terminal, init asks for what -s/--server and -t/--token do not give
(the token is read without echo). In scripts pass them as flags, or the
token on stdin with --token-stdin. The token is checked against the server
unless --no-verify, and is never printed.`,
		Example: `  kod init
  kod init -s https://kod.example.com -t kod_...
  echo "$TOKEN" | kod init -s https://kod.example.com --token-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u := a.ui(cmd)
			cur, err := a.settings()
			if err != nil && a.flagServer == "" {
				cur.Server = DefaultServerURL
			}
			server, token, err := a.askInit(cmd, cur, tokenStdin)
			if err != nil {
				return err
			}
			if _, err := client.ParseServerURL(server); err != nil {
				return err
			}
			if !noVerify {
				if err := verifyLogin(cmd.Context(), server, token); err != nil {
					return explain(fmt.Errorf("%w (nothing saved; --no-verify saves anyway)", err))
				}
			}
			path := a.configPath()
			if err := writeClientConfig(path, server, token); err != nil {
				return err
			}
			if u.json {
				return u.emitJSON(map[string]any{"configPath": path, "serverUrl": server, "tokenSaved": true})
			}
			u.printf("Saved server %s and token to %s\n", server, path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&tokenStdin, "token-stdin", false, "read the token from stdin")
	cmd.Flags().BoolVar(&noVerify, "no-verify", false, "save without checking the token against the server")
	return cmd
}

// askInit returns the server URL and token: from the flags, stdin, or by
// prompting on a terminal.
func (a *app) askInit(cmd *cobra.Command, cur clientSettings, tokenStdin bool) (string, string, error) {
	server, token := a.flagServer, a.flagToken
	interactive := a.interactive()
	in := bufio.NewReader(a.stdin)
	if server == "" {
		server = cur.Server
		if interactive {
			fmt.Fprintf(cmd.ErrOrStderr(), "Server URL [%s]: ", server)
			line, err := in.ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return "", "", err
			}
			if line = strings.TrimSpace(line); line != "" {
				server = line
			}
		}
	}
	switch {
	case token != "":
	case tokenStdin:
		line, err := in.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", "", err
		}
		token = strings.TrimSpace(line)
	case interactive:
		fmt.Fprint(cmd.ErrOrStderr(), "API token: ")
		data, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", "", err
		}
		token = strings.TrimSpace(string(data))
	}
	if token == "" {
		return "", "", errors.New("no token given: pass -t/--token, --token-stdin, or run `kod init` on a terminal")
	}
	return strings.TrimRight(strings.TrimSpace(server), "/"), token, nil
}

// verifyLogin checks that server answers and accepts token.
func verifyLogin(ctx context.Context, server, token string) error {
	c, err := client.New(server, token)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := c.Health(ctx); err != nil {
		return err
	}
	// Any authenticated answer will do: 403 means the token is valid but may
	// not list repositories.
	if _, err = c.ListRepos(ctx); client.StatusOf(err) == http.StatusForbidden {
		return nil
	}
	return err
}
