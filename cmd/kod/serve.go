package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/server"
)

func newServeCmd() *cobra.Command {
	cfg := config.Default(config.Home())
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the kod server (REST API, git over HTTP and SSH, workflow runner)",
		Long: `Run the kod server.

Settings come from, in rising precedence: defaults, the config file
(~/.kod/config.json or --config), KOD_* environment variables, and flags.
-t/--token is Kod's legacy name of --admin-token here.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := config.Load(&cfg, configPath, cmd.Flags(), os.Getenv); err != nil {
				return err
			}
			if tok := cmd.Flags().Lookup("token"); tok != nil && tok.Changed && !cmd.Flags().Changed("admin-token") {
				cfg.AdminToken = tok.Value.String() // Kod's legacy `kod serve --token`
			}
			return serve(cmd.Context(), cfg, newLogger())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&configPath, "config", os.Getenv("KOD_CONFIG"), "config file (JSON)")
	config.RegisterFlags(fs)
	fs.Bool("no-ssh", false, "do not serve git over SSH")
	return cmd
}

// serve runs the server until ctx ends (SIGINT/SIGTERM) or it fails, then
// shuts it down within 30 s.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	srv, err := server.New(cfg, log)
	if err != nil {
		return err
	}
	shutdown := func() error {
		shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return srv.Shutdown(shutCtx)
	}
	if err := srv.Start(ctx); err != nil {
		return errors.Join(err, shutdown())
	}
	select {
	case <-srv.Done():
	case <-ctx.Done():
		log.Info("shutting down")
	}
	return shutdown()
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
