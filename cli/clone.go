package cli

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

The token reaches git through a credential helper in the environment of the
git process only, and git asks that helper only for the clone URL's scheme,
host and port: it is never written into .git/config, the remote URL or a
credential store. The configured token is used only when the URL is on the
configured server (same scheme, host and port); a token given with -c is
used for the URL given, wherever it is. Unless --no-credential-helper, the
clone is set up to ask "kod git-credential" on later fetches and pushes to
that server: for the configured token, or for the -c token, which is kept
in the config file (mode 0600, key cloneCredentials) for that server only.`,
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
			tok, ours := cloneToken(cmd.ErrOrStderr(), s, src, token)
			if err := gitClone(cmd, src, dir, tok); err != nil {
				return err
			}
			if dir == "" {
				dir = strings.TrimSuffix(filepath.Base(src), ".git")
			}
			switch {
			case noHelper:
				return nil
			case token != "" && isHTTPURL(src) && originOf(src) != "":
				// The -c token serves later fetches and pushes of this
				// clone too: kept in the config file (0600), never in the
				// clone's .git/config, asked for only for its server.
				id, err := addCloneCredential(s.ConfigPath, originOf(src), token)
				if err != nil {
					return err
				}
				return configureHelper(cmd.Context(), dir, originOf(src), a.getenv, "--clone", id)
			case ours:
				return configureHelper(cmd.Context(), dir, s.Server, a.getenv)
			}
			return nil
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

// cloneToken picks the token to clone src with: explicit (-c) when given,
// for whatever URL the user named; else the configured token, and only
// when src is on the configured server (sameServer), so a URL of another
// host never receives it. It reports whether src is on the configured
// server with the configured token (the case where the clone is set up to
// ask `kod git-credential` later). A withheld token is said on errOut.
func cloneToken(errOut io.Writer, s clientSettings, src, explicit string) (token string, ours bool) {
	switch {
	case !isHTTPURL(src):
		return explicit, false
	case explicit != "":
		return explicit, false
	case s.Token == "":
		return "", false
	case !sameServer(s.Server, src):
		fmt.Fprintf(errOut, "kod: not sending the configured token to %s: it is for %s (pass -c TOKEN to clone with a token)\n", originOf(src), s.Server)
		return "", false
	}
	return s.Token, true
}

// sameServer reports whether rawURL is on the server at server: the same
// scheme, host and port (a missing port is the scheme's default; host
// names compare without case, as written: no name is resolved, so
// localhost and 127.0.0.1 differ). Unparsable URLs are never the server.
// Both `kod clone` and `kod git-credential` decide with it whether the
// configured token may go to a URL.
func sameServer(server, rawURL string) bool {
	a, errA := url.Parse(server)
	b, errB := url.Parse(rawURL)
	if errA != nil || errB != nil || a.Host == "" || b.Host == "" {
		return false
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && portOf(a) == portOf(b)
}

// portOf is u's port, or its scheme's default port.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// originOf is "scheme://host[:port]" of rawURL, without credentials or path
// ("" if it does not parse): the URL a credential helper is scoped to.
func originOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

// gitClone runs git clone with the token supplied by cloneHelper, which git
// asks only for src's scheme, host and port (credential.<origin>.helper):
// a redirect to, or a submodule on, another server never gets it. Helpers
// from the user's config are reset for this command so none of them stores
// the token.
func gitClone(cmd *cobra.Command, src, dir, token string) error {
	args := []string{"clone", "--", src}
	if dir != "" {
		args = append(args, dir)
	}
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	if origin := originOf(src); token != "" && isHTTPURL(src) && origin != "" {
		args = append([]string{"-c", "credential.helper=", "-c", "credential." + origin + ".helper=" + cloneHelper}, args...)
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
func configureHelper(ctx context.Context, dir, server string, getenv func(string) string, helperArgs ...string) error {
	self, err := executablePath()
	if err != nil {
		return err
	}
	key := "credential." + server + ".helper"
	helper := credentialHelper(self, getenv, helperArgs...)
	for _, v := range []string{"", helper} {
		git := exec.CommandContext(ctx, "git", "-C", dir, "config", "--add", key, v)
		if out, err := git.CombinedOutput(); err != nil {
			return fmt.Errorf("setting up the credential helper: %v: %s", err, out)
		}
	}
	return nil
}

// credentialHelper is the value of credential.<server>.helper that runs
// self as `kod git-credential args...` through git's shell ("!..."). The
// KOD_HOME and KOD_CONFIG in effect now (as absolute paths, when set) are
// set on the command, so a later fetch or push from a shell without them
// reads the same config file: !KOD_HOME='/h' '/usr/bin/kod' git-credential.
func credentialHelper(self string, getenv func(string) string, args ...string) string {
	helper := "!"
	for _, k := range []string{"KOD_HOME", "KOD_CONFIG"} {
		v := getenv(k)
		if v == "" {
			continue
		}
		if abs, err := filepath.Abs(v); err == nil {
			v = abs
		}
		helper += k + "=" + shellQuote(v) + " "
	}
	helper += shellQuote(self) + " git-credential"
	for _, arg := range args {
		helper += " " + shellQuote(arg)
	}
	return helper
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// newGitCredentialCmd is `kod git-credential get|store|erase`, git's
// credential helper protocol: for get, it answers with the configured token
// when the requested host is the configured server's.
func newGitCredentialCmd(a *app) *cobra.Command {
	var cloneID string
	cmd := &cobra.Command{
		Use:    "git-credential get|store|erase",
		Short:  "Git credential helper that supplies the configured token",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := readCredentialRequest(cmd.InOrStdin())
			if args[0] != "get" {
				return nil
			}
			if cloneID != "" { // a clone made with kod clone -c TOKEN
				creds, err := readCloneCredentials(a.configPath())
				if err != nil {
					return err
				}
				c, ok := creds[cloneID]
				if !ok || !credentialForServer(req, c.Origin) {
					return nil // removed, or not its server: git tries elsewhere
				}
				fmt.Fprintf(cmd.OutOrStdout(), "username=kod\npassword=%s\n", c.Token)
				return nil
			}
			s, err := a.settings()
			if err != nil || s.Token == "" {
				return err
			}
			if !credentialForServer(req, s.Server) {
				return nil // not our server: say nothing, git tries elsewhere
			}
			fmt.Fprintf(cmd.OutOrStdout(), "username=kod\npassword=%s\n", s.Token)
			return nil
		},
	}
	cmd.Flags().StringVar(&cloneID, "clone", "", "answer with the token kept for a clone made with kod clone -c")
	return cmd
}

// credentialForServer reports whether git's credential request (protocol
// and host fields) is for the server at server (sameServer). A protocol
// other than http/https or a host that is more than host[:port] is never
// the server, so no crafted field can smuggle the server's name in.
func credentialForServer(req map[string]string, server string) bool {
	proto, host := req["protocol"], req["host"]
	if proto != "http" && proto != "https" || host == "" || strings.ContainsAny(host, "/@?#\\ ") {
		return false
	}
	return sameServer(server, proto+"://"+host)
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

// executablePath is the absolute path of this binary, which git runs as
// the credential helper.
func executablePath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the kod binary: %w", err)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p, nil
}
