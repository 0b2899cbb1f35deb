package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completeRepos completes the first argument with the names of the
// repositories the configured token can read (shell completion via
// `kod completion bash|zsh|fish`). Without a server it offers nothing.
func (a *app) completeRepos(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := a.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	repos, err := c.ListRepos(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, r := range repos {
		if strings.HasPrefix(r.Name, prefix) {
			names = append(names, r.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// withRepoCompletion sets completeRepos on every command of cmds.
func (a *app) withRepoCompletion(cmds ...*cobra.Command) {
	for _, c := range cmds {
		c.ValidArgsFunction = a.completeRepos
	}
}

// completeRepoCmd completes `kod repo ...`, whose arguments cobra does not
// parse (flags after NAME belong to the scoped commands): the first
// argument is a repository name (the subcommands list, create... are
// offered by cobra itself); after NAME come the scoped commands
// (collaborator, protect, secret, webhook...) and their subcommands.
func (a *app) completeRepoCmd(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
	var words []string
	for _, arg := range args {
		if !strings.HasPrefix(arg, "-") {
			words = append(words, arg)
		}
	}
	if len(words) == 0 {
		return a.completeRepos(cmd, nil, prefix)
	}
	root := newRepoScopedCmd(a, words[0])
	at, rest, err := root.Find(append([]string{"repo"}, words...))
	if err != nil || len(rest) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, sub := range at.Commands() {
		if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), prefix) {
			out = append(out, sub.Name()+"\t"+sub.Short)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
