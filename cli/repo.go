package cli

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
)

const repoLong = `Manage repositories.

Commands on one repository take its name first (as in Kod's CLI):

  kod repo NAME collaborator list|add USER|remove USER
  kod repo NAME protected | protect BRANCH | unprotect BRANCH
  kod repo NAME webhook list|add URL [--events push,workflow] [--secret S]|remove ID|deliveries ID|retry ID DELIVERY
  kod repo NAME secret list|set SECRET [--value V, else stdin]|delete SECRET

See "kod repo NAME --help" and "kod repo NAME COMMAND --help".`

// newRepoCmd is `kod repo`: subcommands on repositories, and the
// repository-scoped commands `kod repo NAME ...` dispatched by hand (cobra
// cannot route a free-form name before a subcommand).
func newRepoCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:                "repo",
		Aliases:            []string{"repos"},
		Short:              "Manage repositories, collaborators, protected branches, webhooks and secrets",
		Long:               repoLong,
		DisableFlagParsing: true, // flags after NAME belong to the scoped command
		RunE: func(cmd *cobra.Command, args []string) error {
			name, rest, help := splitRepoArgs(args)
			if help || name == "" {
				return cmd.Help()
			}
			scoped := newRepoScopedCmd(a, name)
			scoped.SetArgs(append([]string{"repo", name}, rest...))
			scoped.SetOut(cmd.OutOrStdout())
			scoped.SetErr(cmd.ErrOrStderr())
			scoped.SetIn(cmd.InOrStdin())
			return scoped.ExecuteContext(cmd.Context())
		},
	}
	cmd.AddCommand(newRepoListCmd(a), newRepoCreateCmd(a), newRepoImportCmd(a), newRepoInfoCmd(a), newRepoUpdateCmd(a), newRepoDeleteCmd(a))
	cmd.ValidArgsFunction = a.completeRepoCmd
	return cmd
}

// splitRepoArgs finds the repository name in the raw arguments of `kod repo
// ...`: the first argument that is neither a flag nor the value of a global
// flag. rest is every other argument, in order. help is true for -h/--help
// before the name.
func splitRepoArgs(args []string) (name string, rest []string, help bool) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		switch {
		case name != "":
			rest = append(rest, arg)
		case arg == "-h" || arg == "--help":
			return "", nil, true
		case slices.Contains([]string{"-s", "--server", "-t", "--token"}, arg):
			rest = append(rest, arg)
			if i+1 < len(args) {
				i++
				rest = append(rest, args[i])
			}
		case strings.HasPrefix(arg, "-"):
			rest = append(rest, arg)
		default:
			name = arg
		}
	}
	return name, rest, false
}

func newRepoListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the repositories the token can read",
		Args:    cobra.NoArgs,
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, _ []string) error {
			repos, err := c.ListRepos(ctx)
			if err != nil || u.json {
				return jsonOr(u, repos, err)
			}
			if len(repos) == 0 {
				u.notef("No repositories yet: create one with `kod repo create NAME`.\n")
				return nil
			}
			rows := make([][]cell, 0, len(repos))
			for _, r := range repos {
				rows = append(rows, plain(r.Name, orDash(strings.Join(r.ProtectedBranches, ",")), orDash(r.OwnerTokenID), ago(u.now, r.CreatedAt)))
			}
			u.table([]string{"NAME", "PROTECTED", "OWNER TOKEN", "CREATED"}, rows)
			return nil
		}),
	}
}

// jsonOr prints v as JSON when err is nil, else returns err. Commands call
// it when --json is set or the request failed.
func jsonOr(u *ui, v any, err error) error {
	if err != nil {
		return err
	}
	return u.emitJSON(v)
}

func newRepoCreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "create NAME",
		Short: "Create an empty repository",
		Args:  exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			repo, err := c.CreateRepo(ctx, args[0])
			if err != nil || u.json {
				return jsonOr(u, repo, err)
			}
			u.printf("Created repository %s\n", repo.Name)
			u.printf("Clone it with: kod clone %s   (or git clone %s)\n", repo.Name, c.URL("/repos/"+repo.Name+".git"))
			return nil
		}),
	}
}

func newRepoImportCmd(a *app) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "import SOURCE",
		Short: "Import a Git repository (git clone --mirror of SOURCE on the server)",
		Long: `Import a Git repository: the server mirrors SOURCE (a URL, or for admin
tokens a path on the server) with all branches and tags. The name is
derived from SOURCE unless --name is given.`,
		Args: exactArgs("SOURCE"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			repo, err := c.ImportRepo(ctx, args[0], name)
			if err != nil || u.json {
				return jsonOr(u, repo, err)
			}
			u.printf("Imported %s as repository %s\n", args[0], repo.Name)
			return nil
		}),
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the new repository")
	return cmd
}

func newRepoInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "info NAME",
		Aliases: []string{"show"},
		Short:   "Show a repository: branches, protections, collaborators, clone URL",
		Args:    exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			repo, err := c.GetRepo(ctx, args[0])
			if err != nil || u.json {
				return jsonOr(u, repo, err)
			}
			def := "-"
			if repo.DefaultBranch != nil {
				def = *repo.DefaultBranch
			}
			fields := [][2]string{
				{"Name", repo.Name},
				{"Created", ago(u.now, repo.CreatedAt)},
				{"Default branch", def},
				{"Branches", orDash(strings.Join(repo.Branches, ", "))},
				{"Protected", orDash(strings.Join(repo.ProtectedBranches, ", "))},
				{"Collaborators", orDash(strings.Join(repo.Collaborators.Usernames(), ", "))},
				{"Owner token", orDash(repo.OwnerTokenID)},
				{"Clone", c.URL("/repos/" + repo.Name + ".git")},
			}
			for _, f := range fields {
				u.printf("%-16s%s\n", f[0]+":", f[1])
			}
			return nil
		}),
	}
}

func newRepoUpdateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "update NAME name NEW_NAME | update NAME default-branch BRANCH",
		Short: "Rename a repository, or set its default branch (owner or admin)",
		Long: `Rename a repository (its runs, secrets, webhooks and collaborators follow), or
set its default branch: the branch clones check out and schedules run on. The
branch must exist.`,
		Args: exactArgs("NAME", "FIELD (name or default-branch)", "VALUE"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			switch args[1] {
			case "name":
				repo, err := c.RenameRepo(ctx, args[0], args[2])
				if err != nil || u.json {
					return jsonOr(u, repo, err)
				}
				u.printf("Renamed repository %s to %s\n", args[0], repo.Name)
			case "default-branch":
				repo, err := c.SetDefaultBranch(ctx, args[0], args[2])
				if err != nil || u.json {
					return jsonOr(u, repo, err)
				}
				u.printf("Default branch of %s is now %s\n", args[0], args[2])
			default:
				return fmt.Errorf("cannot update %q: the name and the default branch can be changed (kod repo update %s name NEW_NAME, or default-branch BRANCH)", args[1], args[0])
			}
			return nil
		}),
	}
}

func newRepoDeleteCmd(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a repository with its runs, secrets and webhooks",
		Long: `Delete a repository with everything attached to it. On a terminal you are
asked to type the name unless --yes is given; without a terminal (a script,
a pipe) --yes is required.`,
		Args: exactArgs("NAME"),
		RunE: a.run(func(ctx context.Context, c *client.Client, u *ui, args []string) error {
			if !yes && !a.interactive() {
				return fmt.Errorf("not deleted: repository %s would be deleted with all its runs, secrets and webhooks, and there is no terminal to confirm on; pass --yes", args[0])
			}
			if !yes {
				u.notef("Delete repository %s and all its runs, secrets and webhooks? Type its name to confirm: ", args[0])
				line, _ := bufio.NewReader(a.stdin).ReadString('\n')
				if strings.TrimSpace(line) != args[0] {
					return fmt.Errorf("not deleted: the name did not match")
				}
			}
			if err := c.DeleteRepo(ctx, args[0]); err != nil {
				return err
			}
			if u.json {
				return u.emitJSON(map[string]any{"name": args[0], "deleted": true})
			}
			u.printf("Deleted repository %s\n", args[0])
			return nil
		}),
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
