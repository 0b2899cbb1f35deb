package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "Manage API tokens (admin)",
	}
	cmd.AddCommand(newTokenListCmd(a), newTokenCreateCmd(a), newTokenDeleteCmd(a))
	return cmd
}

func newTokenListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List tokens (never their secrets)",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, _ []string) error {
			ts, err := c.ListTokens(ctx)
			if err != nil || u.json {
				return jsonOr(u, ts, err)
			}
			var rows [][]cell
			for _, t := range ts {
				rows = append(rows, plain(t.ID, t.Name, strings.Join(t.Permissions, ","), orDash(t.Username),
					ago(u.now, t.CreatedAt), ago(u.now, t.LastUsedAt), ago(u.now, t.ExpiresAt)))
			}
			u.table([]string{"ID", "NAME", "PERMISSIONS", "USERNAME", "CREATED", "LAST USED", "EXPIRES"}, rows)
			return nil
		}),
	}
}

func newTokenCreateCmd(a *app) *cobra.Command {
	var req client.TokenRequest
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token; its secret is shown once",
		Long: `Create a token. Permissions: repo:read, repo:write, repo:delete,
collaborator:read, collaborator:write, workflow:read, workflow:trigger,
secrets:read, secrets:write, webhook:read, webhook:write, admin (default
repo:read,repo:write). --username links the token to a collaborator: it
then reaches only the repositories that name that user.`,
		Example: "  kod token create ci --permissions repo:read,workflow:trigger --expires 30",
		Args:    exactArgs("NAME"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			// The API refuses expiresInDays outside 1..365; 0 must not
			// quietly mean "never" here (omit --expires for that).
			if cmd.Flags().Changed("expires") && (req.ExpiresInDays < 1 || req.ExpiresInDays > 365) {
				return fmt.Errorf("--expires must be between 1 and 365 days, got %d (omit it for a token that never expires)", req.ExpiresInDays)
			}
			return nil
		},
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			req.Name = args[0]
			t, err := c.CreateToken(ctx, req)
			if err != nil || u.json {
				return jsonOr(u, t, err)
			}
			u.printf("Created token %s (%s) with %s\n", t.Name, t.ID, strings.Join(t.Permissions, ","))
			if t.ExpiresAt != nil {
				u.printf("Expires %s\n", ago(u.now, *t.ExpiresAt))
			}
			u.printf("\n    %s\n\nSave this token - it will not be shown again.\n", t.Token)
			return nil
		}),
	}
	create.Flags().StringSliceVar(&req.Permissions, "permissions", nil, "comma-separated permissions")
	create.Flags().IntVar(&req.ExpiresInDays, "expires", 0, "days until the token expires (1-365; default never)")
	create.Flags().StringVar(&req.Username, "username", "", "collaborator username the token acts as")
	return create
}

func newTokenDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete ID",
		Aliases: []string{"rm", "remove", "revoke"},
		Short:   "Delete a token (not the one you are using)",
		Args:    exactArgs("ID"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.DeleteToken(ctx, args[0]), "Deleted token %s\n", args[0])
		}),
	}
}
