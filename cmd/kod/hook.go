package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/cli"
	"github.com/kod-forge/kod/gitsvc"
)

func newHookCmd() *cobra.Command {
	return &cobra.Command{
		Use:       "hook pre-receive|post-receive",
		Short:     "Run a git server hook (called by git inside a push; not for people)",
		Hidden:    true,
		Args:      cobra.ExactArgs(1),
		ValidArgs: gitsvc.HookNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			code := gitsvc.RunHook(cmd.Context(), args[0], os.Stdin, os.Stderr, os.Getenv)
			if code != 0 {
				return &cli.ExitError{Code: code}
			}
			return nil
		},
	}
}
