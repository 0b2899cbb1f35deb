package cli

import (
	"context"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
)

// newRepoScopedCmd is the command tree of `kod repo NAME ...`, rooted at a
// "kod" of its own so that help shows "kod repo NAME COMMAND"; it carries the
// global flags again because `kod repo` passes its arguments on unparsed.
// Execute it with the arguments "repo", NAME, then the rest.
func newRepoScopedCmd(a *app, repo string) *cobra.Command {
	root := &cobra.Command{Use: "kod", SilenceUsage: true, SilenceErrors: true}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetHelpCommand(&cobra.Command{Hidden: true})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.flagServer, "server", "s", a.flagServer, "kod server URL")
	pf.StringVarP(&a.flagToken, "token", "t", a.flagToken, "API token")
	pf.BoolVar(&a.jsonOut, "json", a.jsonOut, "print JSON instead of tables")
	scoped := &cobra.Command{
		Use:   repo,
		Short: "Commands on repository " + repo,
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	scoped.AddCommand(
		newCollaboratorCmd(a, repo),
		newProtectedCmd(a, repo), newProtectCmd(a, repo, true), newProtectCmd(a, repo, false),
		newWebhookCmd(a, repo), newSecretCmd(a, repo),
	)
	root.AddCommand(&cobra.Command{Use: "repo", Short: "Manage repositories"})
	root.Commands()[0].AddCommand(scoped)
	return root
}

func newCollaboratorCmd(a *app, repo string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "collaborator",
		Aliases: []string{"collaborators", "collab"},
		Short:   "List, add and remove collaborators",
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the collaborators",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, _ []string) error {
			cs, err := c.ListCollaborators(ctx, repo)
			if err != nil || u.json {
				return jsonOr(u, map[string]any{"repoName": repo, "collaborators": cs}, err)
			}
			if len(cs) == 0 {
				u.notef("%s has no collaborators.\n", repo)
				return nil
			}
			dated := slices.ContainsFunc(cs, func(c client.Collaborator) bool { return c.AddedAt != 0 })
			var rows [][]cell
			for _, col := range cs {
				if dated {
					rows = append(rows, plain(col.Username, ago(u.now, col.AddedAt)))
				} else {
					rows = append(rows, plain(col.Username))
				}
			}
			if dated {
				u.table([]string{"USERNAME", "ADDED"}, rows)
			} else {
				u.table([]string{"USERNAME"}, rows)
			}
			return nil
		}),
	}
	add := &cobra.Command{
		Use:   "add USERNAME",
		Short: "Add a collaborator (tokens linked to USERNAME get access)",
		Args:  exactArgs("USERNAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.AddCollaborator(ctx, repo, args[0]), "Added collaborator %s to %s\n", args[0], repo)
		}),
	}
	remove := &cobra.Command{
		Use:     "remove USERNAME",
		Aliases: []string{"rm"},
		Short:   "Remove a collaborator",
		Args:    exactArgs("USERNAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			return done(u, c.RemoveCollaborator(ctx, repo, args[0]), "Removed collaborator %s from %s\n", args[0], repo)
		}),
	}
	cmd.AddCommand(list, add, remove)
	return cmd
}

// done reports a change that returns nothing: the message, or {"ok": true}
// with --json.
func done(u *ui, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	if u.json {
		return u.emitJSON(map[string]bool{"ok": true})
	}
	u.printf(format, args...)
	return nil
}

func newProtectedCmd(a *app, repo string) *cobra.Command {
	return &cobra.Command{
		Use:   "protected",
		Short: "List the protected branches",
		Args:  cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, _ []string) error {
			bs, err := c.ProtectedBranches(ctx, repo)
			return printBranches(u, repo, bs, err)
		}),
	}
}

func printBranches(u *ui, repo string, bs []string, err error) error {
	if err != nil || u.json {
		return jsonOr(u, map[string]any{"branches": bs}, err)
	}
	if len(bs) == 0 {
		u.printf("%s has no protected branches\n", repo)
		return nil
	}
	u.printf("Protected branches of %s: %s\n", repo, strings.Join(bs, ", "))
	return nil
}

// newProtectCmd is `protect BRANCH` (on) or `unprotect BRANCH`.
func newProtectCmd(a *app, repo string, on bool) *cobra.Command {
	use, short := "protect BRANCH", "Protect a branch: only the owner or an admin may push, force-push or delete it"
	if !on {
		use, short = "unprotect BRANCH", "Remove the protection of a branch"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs("BRANCH"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			call := c.Unprotect
			if on {
				call = c.Protect
			}
			bs, err := call(ctx, repo, args[0])
			return printBranches(u, repo, bs, err)
		}),
	}
}
