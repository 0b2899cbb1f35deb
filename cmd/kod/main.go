// Command kod is the kod forge: `kod serve` runs the server (package
// server), `kod hook` is what git runs inside pushes, and the other
// commands are the client (package cli). This package is wiring only.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/cli"
	"github.com/kod-forge/kod/forge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		var coded *cli.ExitError
		if errors.As(err, &coded) {
			os.Exit(coded.Code)
		}
		fmt.Fprintln(os.Stderr, "kod:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "kod",
		Short:         "kod: a self-hosted Git forge whose workflows run every step in a throwaway container",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       forge.Version,
	}
	root.AddCommand(newServeCmd(), newHookCmd())
	cli.AddCommands(root)
	return root
}
