package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kod-forge/kod/client"
)

// maxSecretInput bounds a secret value read from stdin, bytes (the server
// takes up to 64 KiB; more is read so its own message explains the limit).
const maxSecretInput = 1 << 20

func newSecretCmd(a *app, repo string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "secret",
		Aliases: []string{"secrets"},
		Short:   "Manage the secrets injected into workflow steps",
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List secret names (values are never shown)",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, _ []string) error {
			ss, err := c.ListSecrets(ctx, repo)
			if err != nil || u.json {
				return jsonOr(u, ss, err)
			}
			if len(ss) == 0 {
				u.notef("%s has no secrets.\n", repo)
				return nil
			}
			var rows [][]cell
			for _, s := range ss {
				rows = append(rows, plain(s.Name, ago(u.now, s.CreatedAt), ago(u.now, s.UpdatedAt)))
			}
			u.table([]string{"NAME", "CREATED", "UPDATED"}, rows)
			return nil
		}),
	}
	var value string
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Create or replace a secret; the value comes from stdin unless --value",
		Long: `Create or replace a secret. The value is read from stdin (without echo on
a terminal; one trailing newline is dropped), or from --value, which other
users of this machine may see in the process list.`,
		Example: "  kod repo app secret set DEPLOY_TOKEN < token.txt\n  printf %s \"$TOKEN\" | kod repo app secret set DEPLOY_TOKEN",
		Args:    exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			v := value
			if v == "" {
				var err error
				if v, err = a.readSecret(u, args[0]); err != nil {
					return err
				}
			}
			return done(u, c.SetSecret(ctx, repo, args[0], v), "Saved secret %s of %s\n", args[0], repo)
		}),
	}
	set.Flags().StringVar(&value, "value", "", "the value (prefer stdin)")
	del := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm", "remove"},
		Short:   "Delete a secret",
		Args:    exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.DeleteSecret(ctx, repo, args[0]), "Deleted secret %s of %s\n", args[0], repo)
		}),
	}
	cmd.AddCommand(list, set, del)
	return cmd
}

// readSecret reads a secret value: without echo on a terminal, else all of
// stdin minus one trailing newline.
func (a *app) readSecret(u *ui, name string) (string, error) {
	if a.interactive() {
		u.notef("Value of %s: ", name)
		data, err := term.ReadPassword(int(os.Stdin.Fd()))
		u.notef("\n")
		return string(data), err
	}
	data, err := io.ReadAll(io.LimitReader(a.stdin, maxSecretInput+1))
	if err != nil {
		return "", fmt.Errorf("reading the value from stdin: %w", err)
	}
	if len(data) > maxSecretInput {
		return "", fmt.Errorf("the value on stdin is longer than %d bytes", maxSecretInput)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if v == "" {
		return "", errors.New("no value: pipe it on stdin or pass --value")
	}
	return v, nil
}
