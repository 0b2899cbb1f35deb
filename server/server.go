// Package server is `kod serve` as a type: New builds every part of the
// forge (store, secret box, webhook dispatcher, container backend behind
// the registry policy, runner, repository lifecycle, hook server, REST API,
// SSH server) with what it needs; Start opens the listeners; Shutdown stops
// them in order and closes the database.
package server

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

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/forge/boltstore"
	"github.com/kod-forge/kod/gitsvc"
	"github.com/kod-forge/kod/gitsvc/sshd"
	"github.com/kod-forge/kod/metrics"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/faultpoint"
	"github.com/kod-forge/kod/sandbox/registry"
	"github.com/kod-forge/kod/web"
	"github.com/kod-forge/kod/webhook"
)

// Server is a running kod forge. Create with New, then Start; Shutdown
// stops it. Not safe for concurrent Start/Shutdown calls.
type Server struct {
	cfg        config.Config
	log        *slog.Logger
	dataDir    string
	reposDir   string
	hookBinary string
	instance   string

	store    *boltstore.Store
	backend  backend
	webhooks *webhook.Dispatcher
	runner   *runner.Runner
	repos    *repos.Service
	hooks    *gitsvc.HookServer
	api      *api.Server
	ssh      *sshd.Server // nil with SSH off

	pipeline pipelineParts // artifacts and caches (pipeline.go)

	meters      *metrics.Metrics
	metricsLn   net.Listener                    // KOD_METRICS_ADDR; nil when unset
	stopMetrics func(ctx context.Context) error // set by Start

	httpSrv  *http.Server
	httpLn   net.Listener  // bound by New, served by Start
	sshLn    net.Listener  // bound by New (nil with SSH off), served by Start
	served   chan struct{} // closed when HTTP serving ended, with serveErr set
	serveErr error
	sshEnded chan error // the SSH server's end
}

// New builds the server from cfg (validated by config.Load): it binds the
// HTTP, SSH and metrics ports first (a port in use fails before anything
// is created on disk), fills the admin token and encryption key from
// their files next to the data dir or creates them on a first start
// (fillServerSecrets), creates the data, logs and repos directories, opens
// the database (refusing one that another process holds), creates the
// admin token, opens the secret box and connects to the container engine.
// Nothing is served until Start. Errors name what failed; on error everything opened
// is closed again.
func New(cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log}
	started := time.Now()
	if s.dataDir, err = filepath.Abs(cfg.DataDir); err != nil {
		return nil, err
	}
	if s.reposDir, err = filepath.Abs(cfg.ReposDir); err != nil {
		return nil, err
	}
	if err := s.listen(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.closeListeners())
		}
	}()
	if _, err := fillServerSecrets(&s.cfg, s.dataDir, log); err != nil {
		return nil, err
	}
	cfg = s.cfg
	if err := s.makeDirs(); err != nil {
		return nil, err
	}
	// A server killed mid-checkout left its temporary folder (its git
	// children died with it).
	if n, err := gitsvc.SweepCheckoutTemps(started); err != nil {
		log.Warn("removing leftover checkout folders", "removed", n, "err", err)
	} else if n > 0 {
		log.Info("removed leftover checkout folders", "removed", n)
	}
	if s.hookBinary, err = executablePath(); err != nil {
		return nil, err
	}
	ctx := context.Background()
	if s.store, err = boltstore.Open(filepath.Join(s.dataDir, "kod.db")); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.close())
		}
	}()
	if s.instance, err = s.store.InstanceID(ctx); err != nil {
		return nil, err
	}
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	secretBox, err := forge.OpenSecretBox(ctx, s.store, cfg.EncryptionKey, log)
	if err != nil {
		return nil, err
	}
	if err := s.rebindSecrets(ctx, secretBox); err != nil {
		return nil, err
	}
	s.meters = metrics.New(s.store)
	if s.webhooks, err = newDispatcher(cfg, s.store, s.meters.DeliveryAttempt, log); err != nil {
		return nil, err
	}
	if s.backend, err = newBackend(ctx, cfg, log); err != nil {
		return nil, err
	}
	if s.pipeline, err = s.newPipelineParts(); err != nil {
		return nil, err
	}
	git := &gitsvc.Git{OnServe: s.meters.GitOp}
	if s.runner, err = s.newRunner(git, secretBox); err != nil {
		return nil, err
	}
	importPolicy, err := netpolicy.Parse(cfg.WebhookAllowedHosts)
	if err != nil {
		return nil, err
	}
	pushes := gitsvc.NewPushes(filepath.Join(s.dataDir, "hook.sock"))
	s.repos = repos.New(repos.Config{
		ReposDir: s.reposDir, LogsDir: s.logsDir(), HookBinary: s.hookBinary,
		HostPolicy: importPolicy, ImportTimeout: cfg.ImportTimeout,
		Store: s.store, Git: git, Runs: s.runner, Webhooks: s.webhooks, Log: log,
		ArtifactsDir: s.artifactsDir(), Caches: s.pipeline.cacheDropper(),
	})
	s.hooks = gitsvc.NewHookServer(pushes, s.repos, log)
	s.api = api.New(api.Deps{Store: s.store, Git: git, Repos: s.repos, Pushes: pushes, Runner: s.runner,
		ReposDir: s.reposDir, LogsDir: s.logsDir(), Log: log, Secrets: secretBox, Webhooks: s.webhooks, HostKeyPath: cfg.SSHHostKeyPath,
		HostPolicy: importPolicy, Metrics: s.meters, MetricsToken: cfg.MetricsToken,
		Artifacts: s.pipeline.artifacts, Caches: s.pipeline.caches})
	if s.ssh, err = newSSH(cfg, s.store, git, pushes, s.meters.SSHConn, s.reposDir, log); err != nil {
		return nil, err
	}
	return s, nil
}

// makeDirs creates the data, logs and repos directories (s.dataDir and
// s.reposDir are absolute already).
func (s *Server) makeDirs() error {
	for _, d := range []string{s.dataDir, s.logsDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(s.reposDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", s.reposDir, err)
	}
	return nil
}

// logsDir holds the step logs: <data>/logs/<run>/<step>.log.
func (s *Server) logsDir() string { return filepath.Join(s.dataDir, "logs") }

// newRunner builds the runner over the container backend behind the
// registry host policy (sandbox/registry) and the metrics, reading
// repositories with git; a finished run records its webhook deliveries and
// its metrics.
func (s *Server) newRunner(git *gitsvc.Git, secretBox *forge.SecretBox) (*runner.Runner, error) {
	cfg := s.cfg
	registries, err := cfg.RegistryPolicy()
	if err != nil {
		return nil, err
	}
	return runner.New(runner.Config{
		Instance:         s.instance,
		DefaultImage:     cfg.DefaultImage,
		MaxConcurrent:    cfg.MaxConcurrentRuns,
		MaxParallelSteps: cfg.MaxParallelSteps,
		LogsDir:          s.logsDir(),
		StopGrace:        cfg.StopGrace,
		Limits: sandbox.Limits{
			MemoryBytes: int64(cfg.StepMemory),
			NanoCPUs:    int64(cfg.StepCPUs * 1e9),
			PIDs:        int64(cfg.StepPIDs),
		},
		LogCap:              int64(cfg.StepLogLimit),
		Pull:                sandbox.PullPolicy(cfg.PullPolicy),
		Retention:           cfg.RunRetention,
		CloneDepth:          cfg.CloneDepth,
		KeepSuperseded:      !cfg.CancelSuperseded,
		Secrets:             secretSource{store: s.store, box: secretBox},
		MinScheduleInterval: cfg.ScheduleMinInterval,
		OnRunDone: func(ctx context.Context, run *forge.Run) {
			s.webhooks.RunDone(ctx, run)
			s.meters.RunDone(ctx, run)
		},
		ArtifactsDir: s.artifactsDir(),
		Artifacts:    s.pipeline.artifacts,
		Caches:       s.pipeline.caches,
	}, s.store, faultpoint.Wrap(s.meters.Backend(registry.Guard(s.backend, registries.CheckHost))), &repos.Source{Git: git, ReposDir: s.reposDir, PublicURL: publicURL(&s.cfg)}, s.log), nil
}

// rebindSecrets seals secrets saved before repositories had ids (bound to
// the repository's name then) for the repository's id, once the key is at
// hand, so that every secret's additional data is its repository's id.
func (s *Server) rebindSecrets(ctx context.Context, box *forge.SecretBox) error {
	if box == nil || box.Mismatch() {
		return nil
	}
	rebound, failed, err := s.store.RebindSecrets(ctx, box.Reseal)
	if err != nil {
		return fmt.Errorf("binding secrets to repository ids: %w", err)
	}
	if rebound > 0 || failed > 0 {
		s.log.Info("secrets bound to repository ids", "rebound", rebound, "failed", failed)
	}
	return nil
}

// bootstrap creates the admin token from KOD_ADMIN_TOKEN when no token
// exists, and warns when the configured one is not used.
func (s *Server) bootstrap(ctx context.Context) error {
	created, err := api.Bootstrap(ctx, s.store, s.cfg.AdminToken)
	switch {
	case err != nil:
		return fmt.Errorf("creating the admin token: %w", err)
	case created:
		s.log.Info("created the admin token from KOD_ADMIN_TOKEN")
	case s.cfg.AdminToken != "":
		if _, err := s.store.TokenByHash(ctx, forge.HashToken(s.cfg.AdminToken)); err != nil {
			s.log.Warn("the configured admin token (KOD_ADMIN_TOKEN) is not used: it is only created when no token exists, and tokens exist")
		}
	}
	return nil
}

// Start prepares the repositories (hooks pointed at this binary, stale
// imports and quarantines removed), starts the hook server, the runner and
// the webhook dispatcher, and listens for HTTP and SSH. ctx bounds the
// background work of runner and dispatcher. On error call Shutdown.
func (s *Server) Start(ctx context.Context) error {
	if err := s.repos.RemoveStaleImports(); err != nil {
		s.log.Warn("removing unfinished imports", "err", err)
	}
	if err := reinstallHooks(ctx, s.store, s.reposDir, s.hookBinary); err != nil {
		return err
	}
	if err := s.hooks.Start(); err != nil {
		return err
	}
	s.pruneCaches(ctx)
	if err := s.runner.Start(ctx); err != nil {
		return err
	}
	if err := s.webhooks.Start(ctx); err != nil {
		return err
	}
	sshAddr := "off"
	if s.ssh != nil {
		ln := s.sshLn
		s.sshEnded = make(chan error, 1)
		go func() { s.sshEnded <- s.ssh.Serve(ln) }()
		sshAddr = ln.Addr().String()
	}
	ui, err := web.New(web.Deps{Tokens: s.store, Logs: s.runner, API: s.api, PublicURL: s.cfg.PublicURL, SSHAddr: uiSSHAddr(s.ssh != nil, sshAddr), Log: s.log})
	if err != nil {
		return err
	}
	s.stopMetrics = serveMetrics(s.metricsLn, s.meters.Handler(), s.log)
	ln := s.httpLn
	s.httpSrv = &http.Server{Handler: ui.Wrap(s.api), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	s.httpSrv.RegisterOnShutdown(s.api.StopStreams) // log followers must not hold the shutdown
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		s.serveErr = s.httpSrv.Serve(ln)
	}()
	s.log.Info("kod is listening", "http", ln.Addr().String(), "instance", s.instance, "data", s.dataDir, "repos", s.reposDir, "image", s.cfg.DefaultImage, "ssh", sshAddr)
	return nil
}

// Done is closed when the HTTP server stopped serving, by Shutdown or on
// its own (a failed listener); Shutdown then reports why. Nil before Start.
func (s *Server) Done() <-chan struct{} { return s.served }

// Addr is the HTTP listen address ("" before Start).
func (s *Server) Addr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Shutdown stops gracefully within ctx: stop accepting requests and SSH
// connections, stop runs (their containers are removed), stop webhook
// deliveries, stop the hook server, close the engine client and the
// database. Every step runs even when an earlier one fails; the errors are
// joined.
func (s *Server) Shutdown(ctx context.Context) error {
	var errs []error
	if s.httpSrv != nil {
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping HTTP: %w", err))
		}
		<-s.served
		if err := s.serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serving HTTP: %w", err))
		}
	}
	if s.sshEnded != nil {
		if err := stopSSH(ctx, s.ssh, s.sshEnded); err != nil {
			errs = append(errs, fmt.Errorf("stopping SSH: %w", err))
		}
	}
	if s.stopMetrics != nil {
		if err := s.stopMetrics(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping the metrics listener: %w", err))
		}
	}
	errs = append(errs, s.closeListeners())
	if err := s.runner.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping runs: %w", err))
	}
	if err := s.webhooks.Stop(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping webhook deliveries: %w", err))
	}
	if err := s.hooks.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping the hook server: %w", err))
	}
	errs = append(errs, s.close())
	return errors.Join(errs...)
}

// close releases the engine client and the database.
func (s *Server) close() error {
	var errs []error
	if s.backend != nil {
		errs = append(errs, s.backend.Close())
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	return errors.Join(errs...)
}

// listen binds the HTTP, SSH (unless off) and metrics (if set) ports.
func (s *Server) listen() error {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", addr, err)
	}
	s.httpLn = ln
	if s.cfg.SSHEnabled {
		addr := net.JoinHostPort(s.cfg.SSHHost, strconv.Itoa(s.cfg.SSHPort))
		if s.sshLn, err = net.Listen("tcp", addr); err != nil {
			return errors.Join(fmt.Errorf("listening for SSH on %s: %w", addr, err), s.closeListeners())
		}
	}
	if s.metricsLn, err = listenMetrics(s.cfg); err != nil {
		return errors.Join(err, s.closeListeners())
	}
	return nil
}

// closeListeners closes the listeners nothing serves (any more); closing
// one a server already closed is not an error.
func (s *Server) closeListeners() error {
	var errs []error
	for _, ln := range []net.Listener{s.httpLn, s.sshLn, s.metricsLn} {
		if ln != nil {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// uiSSHAddr is the SSH address the web UI shows in clone URLs: the bound
// one, "" with SSH off.
func uiSSHAddr(on bool, bound string) string {
	if !on {
		return ""
	}
	return bound
}
