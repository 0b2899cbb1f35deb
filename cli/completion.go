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
