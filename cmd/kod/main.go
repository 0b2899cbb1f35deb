// Command kod is the kod forge: `kod serve` runs the server, `kod hook` is
// what git runs inside pushes, and the other commands are the client.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/forge"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		var coded *exitError
		if asExit(err, &coded) {
			os.Exit(coded.code)
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
	addClientCommands(root, newApp())
	return root
}

// exitError ends the process with code without printing anything more.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func asExit(err error, target **exitError) bool {
	e, ok := err.(*exitError)
	if ok {
		*target = e
	}
	return ok
}

// newLogger returns the server logger: text to stderr, level from
// KOD_LOG_LEVEL (debug, info, warn, error; default info).
func newLogger() *slog.Logger {
	level := slog.LevelInfo
	switch strings.ToLower(os.Getenv("KOD_LOG_LEVEL")) {
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
