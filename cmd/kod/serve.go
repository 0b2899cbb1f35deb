package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/runner/workflow"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/web"
)

func newServeCmd() *cobra.Command {
	cfg := defaultServeConfig(kodHome())
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
			if err := loadServeConfig(&cfg, configPath, cmd.Flags(), os.Getenv); err != nil {
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
	registerFlags(fs, serveSettings(&defaultServeConfigCopy))
	fs.Bool("no-ssh", false, "do not serve git over SSH")
	return cmd
}

// defaultServeConfigCopy holds the defaults shown in --help; flag values
// are read back through the FlagSet, never from here.
var defaultServeConfigCopy = defaultServeConfig(kodHome())

// serve runs the server until ctx ends (SIGINT/SIGTERM), then shuts down
// gracefully: stop accepting requests, stop runs (their containers are
// removed), close the database.
func serve(ctx context.Context, cfg ServeConfig, log *slog.Logger) error {
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	reposDir, err := filepath.Abs(cfg.ReposDir)
	if err != nil {
		return err
	}
	logsDir := filepath.Join(dataDir, "logs")
	for _, d := range []string{dataDir, logsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(reposDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", reposDir, err)
	}
	hookBinary, err := executablePath()
	if err != nil {
		return err
	}

	store, err := boltstore.Open(filepath.Join(dataDir, "kod.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	instance, err := store.InstanceID(ctx)
	if err != nil {
		return err
	}
	if created, err := api.Bootstrap(ctx, store, cfg.AdminToken); err != nil {
		return fmt.Errorf("creating the admin token: %w", err)
	} else if created {
		log.Info("created the admin token from KOD_ADMIN_TOKEN")
	} else if cfg.AdminToken != "" {
		if _, err := store.TokenByHash(ctx, forge.HashToken(cfg.AdminToken)); err != nil {
			log.Warn("the configured admin token (KOD_ADMIN_TOKEN) is not used: it is only created when no token exists, and tokens exist")
		}
	}
	secretBox, err := forge.OpenSecretBox(ctx, store, cfg.EncryptionKey, log)
	if err != nil {
		return err
	}
	store.SetSecretBox(secretBox)
	webhooks, err := newDispatcher(cfg, store, log)
	if err != nil {
		return err
	}

	registries, err := cfg.registryPolicy()
	if err != nil {
		return err
	}
	backend, err := docker.New(docker.Config{CheckRegistry: registryCheck(registries)}, log)
	if err != nil {
		return fmt.Errorf("connecting to the Docker engine: %w", err)
	}
	defer backend.Close()
	checkEngine(ctx, backend, cfg.DefaultImage, log)

	git := &gitsvc.Git{}
	workflow.MinScheduleInterval = cfg.ScheduleMinInterval // before anything parses a workflow
	run := runner.New(runner.Config{
		Instance:      instance,
		DefaultImage:  cfg.DefaultImage,
		MaxConcurrent: cfg.MaxConcurrentRuns,
		LogsDir:       logsDir,
		StopGrace:     cfg.StopGrace,
		Limits: sandbox.Limits{
			MemoryBytes: int64(cfg.StepMemory),
			NanoCPUs:    int64(cfg.StepCPUs * 1e9),
			PIDs:        int64(cfg.StepPIDs),
		},
		LogCap:         int64(cfg.StepLogLimit),
		Pull:           sandbox.PullPolicy(cfg.PullPolicy),
		Retention:      cfg.RunRetention,
		KeepSuperseded: !cfg.CancelSuperseded,
		Secrets:        secretSource{store: store, box: secretBox},
	}, store, backend, &gitSource{git: git, reposDir: reposDir}, log)
	run.OnRunDone = webhooks.RunDone
	hooks := gitsvc.NewHookServer(filepath.Join(dataDir, "hook.sock"), &pushHandler{store: store, git: git, runner: run, webhooks: webhooks, reposDir: reposDir, log: log}, log)
	hostPolicy, err := netpolicy.Parse(cfg.WebhookAllowedHosts)
	if err != nil {
		return err
	}
	srv := api.New(api.Deps{Store: store, Git: git, Hooks: hooks, Runner: run, ReposDir: reposDir, LogsDir: logsDir, HookBinary: hookBinary, Log: log,
		HostPolicy: hostPolicy, ImportTimeout: cfg.ImportTimeout, Secrets: secretBox, Webhooks: webhooks, HostKeyPath: cfg.SSHHostKeyPath})
	if err := srv.RemoveStaleImports(); err != nil {
		log.Warn("removing unfinished imports", "err", err)
	}

	if err := reinstallHooks(ctx, store, reposDir, hookBinary); err != nil {
		return err
	}
	if err := hooks.Start(); err != nil {
		return err
	}
	defer hooks.Shutdown(context.WithoutCancel(ctx))
	if err := run.Start(ctx); err != nil {
		return err
	}
	if err := webhooks.Start(ctx); err != nil {
		return err
	}
	sshAddr, stopSSH, err := startSSH(cfg, store, git, hooks, reposDir, log)
	if err != nil {
		return err
	}

	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	ui, err := web.New(web.Deps{Tokens: store, Logs: run, API: srv, PublicURL: cfg.PublicURL, SSHAddr: uiSSHAddr(cfg, sshAddr), Log: log})
	if err != nil {
		return err
	}
	httpSrv := &http.Server{Handler: ui.Wrap(srv), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	httpSrv.RegisterOnShutdown(srv.StopStreams) // log followers must not hold the shutdown
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	log.Info("kod is listening", "http", ln.Addr().String(), "instance", instance, "data", dataDir, "repos", reposDir, "image", cfg.DefaultImage, "ssh", sshAddr)

	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	errs := []error{}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("stopping HTTP: %w", err))
	}
	if err := stopSSH(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("stopping SSH: %w", err))
	}
	if err := run.Shutdown(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("stopping runs: %w", err))
	}
	if err := webhooks.Stop(shutCtx); err != nil {
		errs = append(errs, fmt.Errorf("stopping webhook deliveries: %w", err))
	}
	return errors.Join(errs...)
}

// checkEngine logs, without failing start-up, what would make runs fail.
func checkEngine(ctx context.Context, d *docker.Docker, image string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	version, err := d.Ping(ctx)
	if err != nil {
		log.Error("the Docker engine is unreachable: workflow runs will fail until it is back", "err", err)
		return
	}
	ok, err := d.ImagePresent(ctx, image)
	switch {
	case err != nil:
		log.Error("checking the default image", "image", image, "err", err)
	case !ok && image == DefaultImage:
		log.Warn("the default step image is missing: build it with scripts/build-images", "image", image)
	case !ok:
		log.Warn("the default step image is not present; the engine will pull it on first use", "image", image)
	}
	log.Info("Docker engine reachable", "api", version)
}

// executablePath is the absolute path of this binary, which git hooks run.
func executablePath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the kod binary for git hooks: %w", err)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		p = r
	}
	return p, nil
}

// reinstallHooks points every repository's hooks at this binary (it may
// have moved since they were written) and removes the quarantine of pushes
// that a crash interrupted.
func reinstallHooks(ctx context.Context, store *boltstore.Store, reposDir, binary string) error {
	repos, err := store.ListRepos(ctx)
	if err != nil {
		return err
	}
	for _, r := range repos {
		dir, err := gitsvc.RepoPath(reposDir, r.Name)
		if err != nil {
			return err
		}
		if _, err := os.Stat(dir); err != nil {
			continue // reported when used
		}
		if err := gitsvc.InstallHooks(dir, binary); err != nil {
			return fmt.Errorf("installing hooks of %s: %w", r.Name, err)
		}
		if err := gitsvc.RemoveStaleQuarantines(dir, 10*time.Minute); err != nil {
			return fmt.Errorf("cleaning %s: %w", r.Name, err)
		}
	}
	return nil
}

// uiSSHAddr is the SSH address the web UI shows in clone URLs: the bound
// one ("" when SSH is off).
func uiSSHAddr(cfg ServeConfig, bound string) string {
	if !cfg.SSHEnabled {
		return ""
	}
	return bound
}
