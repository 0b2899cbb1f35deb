package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/forge"
)

// cloneTokenEnv carries the token to the credential helper of `kod clone`;
// it exists only in the environment of that git process.
const cloneTokenEnv = "KOD_CLONE_TOKEN"

// cloneHelper answers git's credential requests with the token from the
// environment; git runs it through sh. `store` and `erase` do nothing, so
// nothing is written anywhere.
const cloneHelper = `!f() { test "$1" = get || exit 0; echo username=kod; printf 'password=%s\n' "$` + cloneTokenEnv + `"; }; f`

func newCloneCmd(a *app) *cobra.Command {
	var token string
	var noHelper bool
	cmd := &cobra.Command{
		Use:   "clone NAME|URL [DIR]",
		Short: "Clone a repository, authenticating with the token without storing it",
		Long: `Clone a repository by name (from the configured server) or URL.

The token (-c, else the configured one) reaches git through a credential
helper in the environment of the git process only: it is never written into
.git/config, the remote URL or a credential store. Unless -c is given or
--no-credential-helper, the clone is set up to ask "kod git-credential" for
the configured token on later fetches and pushes to the same server.`,
		Example: "  kod clone my-project\n  kod clone http://kod.example.com:3000/repos/app.git app -c kod_...",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := a.settings()
			if err != nil {
				return err
			}
			src, err := cloneURL(s.Server, args[0])
			if err != nil {
				return err
			}
			dir := ""
			if len(args) == 2 {
				dir = args[1]
			}
			tok := token
			if tok == "" {
				tok = s.Token
			}
			if err := gitClone(cmd, src, dir, tok); err != nil {
				return err
			}
			if token != "" || noHelper || !isHTTPURL(src) || s.Token == "" {
				return nil
			}
			if dir == "" {
				dir = strings.TrimSuffix(filepath.Base(src), ".git")
			}
			return configureHelper(cmd.Context(), dir, s.Server)
		},
	}
	cmd.Flags().StringVarP(&token, "credential", "c", "", "token to clone with (instead of the configured one)")
	cmd.Flags().BoolVar(&noHelper, "no-credential-helper", false, "do not set up kod as the credential helper of the clone")
	return cmd
}

// cloneURL is arg when it is a URL (http, https, ssh, or scp-like
// user@host:path), else the server's smart HTTP URL of the repository arg.
func cloneURL(server, arg string) (string, error) {
	if strings.Contains(arg, "://") || strings.Contains(arg, "@") {
		return arg, nil
	}
	name := strings.TrimSuffix(arg, ".git")
	if err := forge.ValidateRepoName(name); err != nil {
		return "", fmt.Errorf("%q is neither a URL nor a repository name: %w", arg, err)
	}
	c, err := client.New(server, "")
	if err != nil {
		return "", err
	}
	return c.URL("/repos/" + name + ".git"), nil
}

func isHTTPURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// gitClone runs git clone with the token supplied by cloneHelper. Helpers
// from the user's config are reset for this command so none of them stores
// the token.
func gitClone(cmd *cobra.Command, src, dir, token string) error {
	args := []string{"clone", "--", src}
	if dir != "" {
		args = append(args, dir)
	}
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if token != "" && isHTTPURL(src) {
		args = append([]string{"-c", "credential.helper=", "-c", "credential.helper=" + cloneHelper}, args...)
		env = append(env, cloneTokenEnv+"="+token)
	}
	git := exec.CommandContext(cmd.Context(), "git", args...)
	git.Env = env
	git.Stdin, git.Stdout, git.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if err := git.Run(); err != nil {
		return fmt.Errorf("git clone %s: %w", src, err)
	}
	return nil
}

// configureHelper makes `kod git-credential` the only credential helper of
// the clone in dir for URLs of server (the empty entry first drops helpers
// from the user's config, so none of them stores the token).
func configureHelper(ctx context.Context, dir, server string) error {
	self, err := executablePath()
	if err != nil {
		return err
	}
	key := "credential." + server + ".helper"
	for _, v := range []string{"", "!" + shellQuote(self) + " git-credential"} {
		git := exec.CommandContext(ctx, "git", "-C", dir, "config", "--add", key, v)
		if out, err := git.CombinedOutput(); err != nil {
			return fmt.Errorf("setting up the credential helper: %v: %s", err, out)
		}
	}
	return nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// newGitCredentialCmd is `kod git-credential get|store|erase`, git's
// credential helper protocol: for get, it answers with the configured token
// when the requested host is the configured server's.
func newGitCredentialCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    "git-credential get|store|erase",
		Short:  "Git credential helper that supplies the configured token",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := readCredentialRequest(cmd.InOrStdin())
			if args[0] != "get" {
				return nil
			}
			s, err := a.settings()
			if err != nil || s.Token == "" {
				return err
			}
			server, err := url.Parse(s.Server)
			if err != nil || req["protocol"] != server.Scheme || req["host"] != server.Host {
				return nil // not our server: say nothing, git tries elsewhere
			}
			fmt.Fprintf(cmd.OutOrStdout(), "username=kod\npassword=%s\n", s.Token)
			return nil
		},
	}
}

// readCredentialRequest parses git's key=value lines up to a blank line.
func readCredentialRequest(r io.Reader) map[string]string {
	m := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}
