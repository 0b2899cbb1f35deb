package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
)

func newKeysCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"key"},
		Short:   "Manage SSH public keys for git over SSH",
	}
	cmd.AddCommand(newKeysListCmd(a), newKeysAddCmd(a), newKeysRemoveCmd(a))
	return cmd
}

func newKeysListCmd(a *app) *cobra.Command {
	var username string
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your SSH keys (admins: --username)",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, _ []string) error {
			ks, err := c.ListKeys(ctx, username)
			if err != nil || u.json {
				return jsonOr(u, ks, err)
			}
			if len(ks) == 0 {
				u.notef("No SSH keys: add one with `kod keys add ~/.ssh/id_ed25519.pub`.\n")
				return nil
			}
			var rows [][]cell
			for _, k := range ks {
				rows = append(rows, plain(k.ID, orDash(k.Name), k.Username, k.KeyType, k.Fingerprint, ago(u.now, k.CreatedAt), addedBy(k)))
			}
			u.table([]string{"ID", "NAME", "USERNAME", "TYPE", "FINGERPRINT", "ADDED", "ADDED BY"}, rows)
			return nil
		}),
	}
	list.Flags().StringVar(&username, "username", "", "list this user's keys (admin)")
	return list
}

// addedBy is the ADDED BY column of a key: the id of the token that added
// it (the key acts as that token), "admin <id>" for an admin token (the key
// speaks for its user), or "-" for a key stored before kod recorded it
// (it grants nothing).
func addedBy(k client.Key) string {
	switch {
	case k.AddedByTokenID == "":
		return "-"
	case k.AddedByAdmin:
		return "admin " + k.AddedByTokenID
	}
	return k.AddedByTokenID
}

func newKeysAddCmd(a *app) *cobra.Command {
	var req client.KeyRequest
	add := &cobra.Command{
		Use:   "add PATH|KEY",
		Short: "Add an SSH public key from a file or given inline",
		Example: `  kod keys add ~/.ssh/id_ed25519.pub --name laptop
  kod keys add "ssh-ed25519 AAAA... me@laptop"`,
		Args: exactArgs("PATH|KEY"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			key, fromFile, err := readPublicKey(args[0])
			if err != nil {
				return err
			}
			r := req
			r.PublicKey = key
			if r.Name == "" && fromFile {
				r.Name = keyComment(key, filepath.Base(args[0]))
			}
			k, err := c.AddKey(ctx, r)
			if err != nil || u.json {
				return jsonOr(u, k, cliUsernameHint(err))
			}
			u.printf("Added %s key %s (%s) for %s\n", k.KeyType, k.Fingerprint, k.ID, k.Username)
			return nil
		}),
	}
	add.Flags().StringVar(&req.Name, "name", "", "a name for the key (default: its comment or file name)")
	add.Flags().StringVar(&req.Username, "username", "", "add the key for this user (admin)")
	return add
}

func newKeysRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove ID",
		Aliases: []string{"rm", "delete"},
		Short:   "Remove an SSH key",
		Args:    exactArgs("ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.DeleteKey(ctx, args[0]), "Removed key %s\n", args[0])
		}),
	}
}

// readPublicKey returns the key given inline ("ssh-ed25519 AAAA...") or read
// from the file at arg. A private key file is refused with a hint.
func readPublicKey(arg string) (key string, fromFile bool, err error) {
	if strings.HasPrefix(arg, "ssh-") || strings.HasPrefix(arg, "ecdsa-") || strings.HasPrefix(arg, "sk-") {
		return strings.TrimSpace(arg), false, nil
	}
	data, err := os.ReadFile(arg)
	if err != nil {
		return "", false, fmt.Errorf("reading the public key: %w", err)
	}
	text := strings.TrimSpace(string(data))
	if strings.Contains(text, "PRIVATE KEY") {
		return "", false, fmt.Errorf("%s is a private key: give the public key (%s.pub)", arg, arg)
	}
	if strings.Count(text, "\n") > 0 {
		return "", false, fmt.Errorf("%s holds more than one line: give one public key", arg)
	}
	return text, true, nil
}

// keyComment is the comment of an authorized_keys line, else fallback.
func keyComment(key, fallback string) string {
	if f := strings.Fields(key); len(f) >= 3 {
		return strings.Join(f[2:], " ")
	}
	return fallback
}

// cliUsernameHint rewords the API's hint about its "username" field (a
// token without a username adding or listing keys) as the flag that sets
// it, --username.
func cliUsernameHint(err error) error {
	var apiErr *client.Error
	if errors.As(err, &apiErr) && strings.Contains(apiErr.Message, `with "username"`) {
		e := *apiErr
		e.Message = strings.Replace(e.Message, `with "username"`, "with --username NAME", 1)
		return &e
	}
	return err
}
