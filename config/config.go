// Package config is the settings of `kod serve`: one Config, filled from
// defaults < config file < KOD_* environment < flags, then validated with
// messages that name the setting. Client commands that act on a server's
// directories (backup, restore, doctor) resolve them here the same way.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/gitsvc/sshd"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/repos"
	"github.com/kod-forge/kod/runner/workflow"
)

// Config is every setting of `kod serve`. Each is set, in rising
// precedence, by its default, the config file (JSON, camelCase keys), its
// KOD_* environment variable, and its flag (Kod's names and order).
type Config struct {
	Port              int
	Host              string
	DataDir           string
	ReposDir          string
	AdminToken        string
	EncryptionKey     string
	DefaultImage      string
	MaxConcurrentRuns int
	MaxParallelSteps  int // step containers executing at once over every run
	StopGrace         time.Duration
	StepMemory        ByteSize // per step container; 0 = no limit
	StepCPUs          float64  // per step container; 0 = no limit
	StepPIDs          int      // per step container; 0 = no limit
	StepLogLimit      ByteSize // bytes of a step's log kept (first and last half)
	CacheLimit        ByteSize // bytes of caches kept per repository (LRU eviction)
	ArtifactLimit     ByteSize // bytes of artifacts one run may keep
	PullPolicy        string   // if-not-present, always or never
	RunRetention      int      // runs kept per repository; 0 = all
	CancelSuperseded  bool     // a push cancels older queued runs of its branch
	CloneDepth        int      // commits of history in a run's workspace; 0 = all
	SSHEnabled        bool
	// PublicURL is the server's external base URL (clone URLs in the web
	// UI; https makes its cookies Secure); "" = what the browser used.
	PublicURL         string
	SSHHost           string
	SSHPort           int
	SSHHostKeyPath    string
	SSHAnonymousRead  bool
	SSHIdleTimeout    time.Duration
	SSHMaxSession     time.Duration
	SSHMaxPerAddress  int
	SSHLoginGraceTime time.Duration
	SSHMaxUnauth      int
	// WebhookAllowedHosts is the host policy of imports, webhooks and,
	// unless RegistryAllowedHosts is set, image pulls (netpolicy.Parse
	// syntax).
	WebhookAllowedHosts string
	// RegistryAllowedHosts is the host policy of image pulls; "" means
	// WebhookAllowedHosts's.
	RegistryAllowedHosts string
	ImportTimeout        time.Duration
	// MetricsToken is a bearer token that may read GET /metrics besides
	// admin tokens; MetricsAddr, if set, serves /metrics without auth on a
	// listener of its own (e.g. 127.0.0.1:9090).
	MetricsToken string
	MetricsAddr  string
	// WebhookRetrySchedule overrides the retry delays of webhook
	// deliveries ("1s,2s,3s"); for tests, not shown in --help.
	WebhookRetrySchedule string
	// ScheduleMinInterval is the shortest interval between two firings a
	// workflow schedule may ask for (workflow.MinScheduleInterval, 1m);
	// for tests, not shown in --help.
	ScheduleMinInterval time.Duration
	// Backend runs the steps: "docker" or "kubernetes" (Kube).
	Backend string
	Kube    Kube
}

// DefaultImage is the step image built by scripts/build-images from
// Debian's busybox-static; it needs no registry.
const DefaultImage = "kod/busybox:local"

// Default returns the defaults of every setting, with the directories under
// home (~/.kod, see Home).
func Default(home string) Config {
	return Config{
		Port:                3000,
		Host:                "0.0.0.0",
		DataDir:             filepath.Join(home, "data"),
		ReposDir:            filepath.Join(home, "repos"),
		DefaultImage:        DefaultImage,
		MaxConcurrentRuns:   2,
		MaxParallelSteps:    runtime.NumCPU(),
		StopGrace:           10 * time.Second,
		StepMemory:          2 << 30,
		StepCPUs:            2,
		StepPIDs:            1024,
		StepLogLimit:        16 << 20,
		CacheLimit:          ByteSize(forge.DefaultCacheLimit),
		ArtifactLimit:       ByteSize(forge.DefaultArtifactLimit),
		PullPolicy:          "if-not-present",
		RunRetention:        100,
		CancelSuperseded:    true,
		SSHEnabled:          true,
		SSHHost:             "0.0.0.0",
		SSHPort:             2222,
		SSHHostKeyPath:      filepath.Join(home, "ssh_host_ed25519_key"),
		WebhookAllowedHosts: netpolicy.Default,
		ImportTimeout:       repos.DefaultImportTimeout,
		ScheduleMinInterval: workflow.MinScheduleInterval,
		Backend:             BackendDocker,
		Kube:                defaultKube(),
		SSHIdleTimeout:      sshd.DefaultIdleTimeout,
		SSHMaxSession:       sshd.DefaultMaxSession,
		SSHMaxPerAddress:    sshd.DefaultMaxPerAddr,
		SSHLoginGraceTime:   sshd.DefaultLoginGraceTime,
		SSHMaxUnauth:        sshd.DefaultMaxUnauthenticated,
	}
}

// Home is ~/.kod (or KOD_HOME), where the defaults live.
func Home() string {
	if h := os.Getenv("KOD_HOME"); h != "" {
		return h
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".kod"
	}
	return filepath.Join(home, ".kod")
}

// setting describes one configurable value and every way to set it.
type setting struct {
	key   string   // config file key
	env   []string // environment variables, first wins
	flag  string   // long flag name; "" if none
	short string   // one-letter flag
	usage string
	ptr   any // *int, *string, *bool or *time.Duration in the config
}

func serveSettings(c *Config) []setting {
	return []setting{
		{"port", []string{"KOD_PORT"}, "port", "p", "HTTP port", &c.Port},
		{"host", []string{"KOD_HOST"}, "host", "", "HTTP listen address", &c.Host},
		{"dataDir", []string{"KOD_DATA_DIR"}, "data-dir", "", "data directory (database, logs, hook socket)", &c.DataDir},
		{"reposDir", []string{"KOD_REPOS_DIR"}, "repos-dir", "", "directory of the bare repositories", &c.ReposDir},
		{"adminToken", []string{"KOD_ADMIN_TOKEN", "KOD_API_TOKEN"}, "admin-token", "", "admin token created when no token exists", &c.AdminToken},
		{"encryptionKey", []string{"KOD_ENCRYPTION_KEY"}, "encryption-key", "", "key for secrets at rest", &c.EncryptionKey},
		{"defaultImage", []string{"KOD_DEFAULT_IMAGE"}, "default-image", "", "image of steps whose workflow names none", &c.DefaultImage},
		{"maxConcurrentRuns", []string{"KOD_MAX_CONCURRENT_RUNS"}, "max-concurrent-runs", "", "workflow runs executing at once", &c.MaxConcurrentRuns},
		{"maxParallelSteps", []string{"KOD_MAX_PARALLEL_STEPS"}, "max-parallel-steps", "", "step containers executing at once over every run (default: the number of CPUs)", &c.MaxParallelSteps},
		{"stopGrace", []string{"KOD_STOP_GRACE"}, "stop-grace", "", "grace between SIGTERM and SIGKILL when a step is stopped", &c.StopGrace},
		{"stepMemory", []string{"KOD_STEP_MEMORY"}, "step-memory", "", "memory limit of a step container (e.g. 2g; 0 = none)", &c.StepMemory},
		{"stepCpus", []string{"KOD_STEP_CPUS"}, "step-cpus", "", "CPU limit of a step container (e.g. 1.5; 0 = none)", &c.StepCPUs},
		{"stepPids", []string{"KOD_STEP_PIDS"}, "step-pids", "", "process limit of a step container (0 = none)", &c.StepPIDs},
		{"stepLogLimit", []string{"KOD_STEP_LOG_LIMIT"}, "step-log-limit", "", "bytes of a step's log kept: its first and last half (e.g. 16m)", &c.StepLogLimit},
		{"cacheLimit", []string{"KOD_CACHE_LIMIT"}, "cache-limit", "", "bytes of workflow caches kept per repository; the least recently used go first (e.g. 10g)", &c.CacheLimit},
		{"artifactLimit", []string{"KOD_ARTIFACT_LIMIT"}, "artifact-limit", "", "bytes of artifacts one run may keep; over it the step fails (e.g. 1g)", &c.ArtifactLimit},
		{"pullPolicy", []string{"KOD_PULL_POLICY"}, "pull-policy", "", "when step images are pulled: if-not-present, always or never", &c.PullPolicy},
		{"runRetention", []string{"KOD_RUN_RETENTION"}, "run-retention", "", "runs kept per repository with their logs (0 = all)", &c.RunRetention},
		{"cloneDepth", []string{"KOD_CLONE_DEPTH"}, "clone-depth", "", "commits of history in a run's workspace checkout (0 = all)", &c.CloneDepth},
		{"cancelSuperseded", []string{"KOD_CANCEL_SUPERSEDED"}, "cancel-superseded", "", "a push cancels the older queued runs of its branch and workflows", &c.CancelSuperseded},
		{"publicUrl", []string{"KOD_PUBLIC_URL"}, "public-url", "", "external base URL of the server (web UI clone URLs; https makes its cookies Secure)", &c.PublicURL},
		{"sshEnabled", []string{"KOD_SSH_ENABLED"}, "ssh", "", "serve git over SSH", &c.SSHEnabled},
		{"sshHost", []string{"KOD_SSH_HOST"}, "ssh-host", "", "SSH listen address", &c.SSHHost},
		{"sshPort", []string{"KOD_SSH_PORT"}, "ssh-port", "", "SSH port", &c.SSHPort},
		{"sshHostKeyPath", []string{"KOD_SSH_HOST_KEY_PATH"}, "ssh-host-key", "", "SSH host key file (created if missing)", &c.SSHHostKeyPath},
		{"sshAnonymousRead", []string{"KOD_SSH_ANONYMOUS_READ"}, "ssh-anonymous-read", "", "allow anonymous read over SSH", &c.SSHAnonymousRead},
		{"sshIdleTimeout", []string{"KOD_SSH_IDLE_TIMEOUT"}, "ssh-idle-timeout", "", "close SSH connections idle this long", &c.SSHIdleTimeout},
		{"sshMaxSession", []string{"KOD_SSH_MAX_SESSION"}, "ssh-max-session", "", "longest an SSH connection may last", &c.SSHMaxSession},
		{"sshMaxPerAddress", []string{"KOD_SSH_MAX_PER_ADDRESS"}, "ssh-max-per-address", "", "concurrent SSH connections (and sessions) per remote address", &c.SSHMaxPerAddress},
		{"sshLoginGraceTime", []string{"KOD_SSH_LOGIN_GRACE_TIME"}, "ssh-login-grace-time", "", "close SSH connections not signed in within this time", &c.SSHLoginGraceTime},
		{"sshMaxUnauthenticated", []string{"KOD_SSH_MAX_UNAUTHENTICATED"}, "ssh-max-unauthenticated", "", "SSH connections not signed in yet, server-wide; more are closed at once", &c.SSHMaxUnauth},
		{"webhookAllowedHosts", []string{netpolicy.Setting}, "webhook-allowed-hosts", "", "hosts imports and webhooks may reach: external, loopback, private, *, CIDRs, host names", &c.WebhookAllowedHosts},
		{"registryAllowedHosts", []string{netpolicy.RegistrySetting}, "registry-allowed-hosts", "", "registries step images may be pulled from (same syntax; empty: as --webhook-allowed-hosts)", &c.RegistryAllowedHosts},
		{"importTimeout", []string{"KOD_IMPORT_TIMEOUT"}, "import-timeout", "", "time limit of one repository import (git clone)", &c.ImportTimeout},
		{"metricsToken", []string{"KOD_METRICS_TOKEN"}, "metrics-token", "", "bearer token that may read GET /metrics (admin tokens always may)", &c.MetricsToken},
		{"metricsAddr", []string{"KOD_METRICS_ADDR"}, "metrics-addr", "", "also serve /metrics WITHOUT auth on this address (e.g. 127.0.0.1:9090)", &c.MetricsAddr},
		{"webhookRetrySchedule", []string{"KOD_WEBHOOK_RETRY_SCHEDULE"}, "", "", "", &c.WebhookRetrySchedule},
		{"scheduleMinInterval", []string{"KOD_SCHEDULE_MIN_INTERVAL"}, "", "", "", &c.ScheduleMinInterval},
		{"backend", []string{"KOD_BACKEND"}, "backend", "", "where steps run: docker or kubernetes", &c.Backend},
		{"kubeconfig", []string{"KOD_KUBECONFIG"}, "kubeconfig", "", "kubeconfig of the cluster (kubernetes backend; default: in-cluster, else ~/.kube/config)", &c.Kube.Kubeconfig},
		{"kubeNamespace", []string{"KOD_KUBE_NAMESPACE"}, "kube-namespace", "", "namespace of step pods", &c.Kube.Namespace},
		{"kubeStorageClass", []string{"KOD_KUBE_STORAGE_CLASS"}, "kube-storage-class", "", "storage class of workspace claims (default: the cluster's)", &c.Kube.StorageClass},
		{"kubeNodeSelector", []string{"KOD_KUBE_NODE_SELECTOR"}, "kube-node-selector", "", "key=value,... labels of the nodes steps may run on", &c.Kube.NodeSelector},
		{"kubePullTimeout", []string{"KOD_KUBE_PULL_TIMEOUT"}, "kube-pull-timeout", "", "how long a step's image may fail to pull", &c.Kube.PullTimeout},
		{"kubeScheduleTimeout", []string{"KOD_KUBE_SCHEDULE_TIMEOUT"}, "kube-schedule-timeout", "", "how long a step pod may stay unschedulable", &c.Kube.ScheduleTimeout},
	}
}

// RegisterFlags adds a flag per setting to fs, showing the defaults in
// --help. Flag values are kept apart from the config and applied last by
// Load.
func RegisterFlags(fs *pflag.FlagSet) {
	defaults := Default(Home())
	for _, s := range serveSettings(&defaults) {
		if s.flag == "" {
			continue
		}
		switch p := s.ptr.(type) {
		case *int:
			fs.IntP(s.flag, s.short, *p, s.usage)
		case *string:
			fs.StringP(s.flag, s.short, *p, s.usage)
		case *bool:
			fs.BoolP(s.flag, s.short, *p, s.usage)
		case *time.Duration:
			fs.DurationP(s.flag, s.short, *p, s.usage)
		case *float64:
			fs.Float64P(s.flag, s.short, *p, s.usage)
		case *ByteSize:
			fs.StringP(s.flag, s.short, p.String(), s.usage)
		}
	}
}

// Load applies file < env < flags onto the defaults in c, then validates
// c. configPath "" means <home>/config.json if it exists; fs may be nil.
// Errors name the setting at fault.
func Load(c *Config, configPath string, fs *pflag.FlagSet, getenv func(string) string) error {
	settings := serveSettings(c)
	if err := applyFile(settings, configPath); err != nil {
		return err
	}
	for _, s := range settings {
		for _, name := range s.env {
			if v := getenv(name); v != "" {
				if err := setFromString(s.ptr, v); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				break
			}
		}
	}
	if fs != nil {
		for _, s := range settings {
			if s.flag != "" && fs.Changed(s.flag) {
				if err := setFromString(s.ptr, fs.Lookup(s.flag).Value.String()); err != nil {
					return fmt.Errorf("--%s: %w", s.flag, err)
				}
			}
		}
		if fs.Changed("no-ssh") {
			c.SSHEnabled = false
		}
	}
	return c.Validate()
}

func applyFile(settings []setting, path string) error {
	explicit := path != ""
	if !explicit {
		path = filepath.Join(Home(), "config.json")
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	for _, s := range settings {
		v, ok := raw[s.key]
		if !ok {
			continue
		}
		var str string
		if json.Unmarshal(v, &str) != nil {
			str = string(v) // numbers and booleans
		}
		if err := setFromString(s.ptr, str); err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, s.key, err)
		}
	}
	return nil
}

// setFromString parses v into ptr. Booleans accept 1/true/yes/on and
// 0/false/no/off (Kod); durations accept Go syntax ("10s") or seconds.
func setFromString(ptr any, v string) error {
	v = strings.TrimSpace(v)
	switch p := ptr.(type) {
	case *string:
		*p = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		*p = n
	case *bool:
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			*p = true
		case "0", "false", "no", "off":
			*p = false
		default:
			return fmt.Errorf("%q is not a boolean (use true/false, yes/no, on/off, 1/0)", v)
		}
	case *time.Duration:
		if n, err := strconv.Atoi(v); err == nil {
			*p = time.Duration(n) * time.Second
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 10s)", v)
		}
		*p = d
	case *float64:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		*p = f
	case *ByteSize:
		b, err := parseByteSize(v)
		if err != nil {
			return err
		}
		*p = b
	default:
		return fmt.Errorf("unsupported setting type %T", ptr)
	}
	return nil
}

// Validate checks the settings, naming the one at fault.
func (c *Config) Validate() error {
	var errs []error
	checkPort := func(name string, p int) {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s must be between 0 and 65535, got %d", name, p))
		}
	}
	checkPort("port (KOD_PORT, --port)", c.Port)
	checkPort("SSH port (KOD_SSH_PORT, --ssh-port)", c.SSHPort)
	if u, err := url.Parse(c.PublicURL); c.PublicURL != "" && (err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "") {
		errs = append(errs, fmt.Errorf("public URL (KOD_PUBLIC_URL, --public-url) must be an http:// or https:// URL, got %q", c.PublicURL))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir (KOD_DATA_DIR, --data-dir) must not be empty"))
	}
	if c.ReposDir == "" {
		errs = append(errs, errors.New("repos dir (KOD_REPOS_DIR, --repos-dir) must not be empty"))
	}
	if c.DefaultImage == "" {
		errs = append(errs, errors.New("default image (KOD_DEFAULT_IMAGE, --default-image) must not be empty"))
	}
	if c.MaxParallelSteps < 1 {
		errs = append(errs, fmt.Errorf("max parallel steps (KOD_MAX_PARALLEL_STEPS) must be at least 1, got %d", c.MaxParallelSteps))
	}
	if c.MaxConcurrentRuns < 1 {
		errs = append(errs, fmt.Errorf("max concurrent runs (KOD_MAX_CONCURRENT_RUNS) must be at least 1, got %d", c.MaxConcurrentRuns))
	}
	if c.SSHEnabled && c.SSHHostKeyPath == "" {
		errs = append(errs, errors.New("SSH host key path (KOD_SSH_HOST_KEY_PATH, --ssh-host-key) must not be empty"))
	}
	if c.SSHIdleTimeout <= 0 || c.SSHMaxSession <= 0 {
		errs = append(errs, errors.New("SSH idle timeout and max session (KOD_SSH_IDLE_TIMEOUT, KOD_SSH_MAX_SESSION) must be positive"))
	}
	if c.SSHMaxPerAddress < 1 {
		errs = append(errs, fmt.Errorf("SSH max per address (KOD_SSH_MAX_PER_ADDRESS) must be at least 1, got %d", c.SSHMaxPerAddress))
	}
	if c.SSHLoginGraceTime <= 0 || c.SSHMaxUnauth < 1 {
		errs = append(errs, fmt.Errorf("SSH login grace time and max unauthenticated (KOD_SSH_LOGIN_GRACE_TIME, KOD_SSH_MAX_UNAUTHENTICATED) must be positive, got %s and %d", c.SSHLoginGraceTime, c.SSHMaxUnauth))
	}
	if c.StopGrace < 0 {
		errs = append(errs, errors.New("stop grace (KOD_STOP_GRACE) must not be negative"))
	}
	if _, err := netpolicy.Parse(c.WebhookAllowedHosts); err != nil {
		errs = append(errs, fmt.Errorf("host policy (--webhook-allowed-hosts): %w", err))
	}
	if _, err := c.RegistryPolicy(); err != nil && strings.TrimSpace(c.RegistryAllowedHosts) != "" {
		errs = append(errs, fmt.Errorf("registry host policy (--registry-allowed-hosts): %w", err))
	}
	if c.ImportTimeout <= 0 {
		errs = append(errs, errors.New("import timeout (KOD_IMPORT_TIMEOUT, --import-timeout) must be positive"))
	}
	if _, err := ParseRetrySchedule(c.WebhookRetrySchedule); err != nil {
		errs = append(errs, err)
	}
	if c.ScheduleMinInterval < time.Second {
		errs = append(errs, fmt.Errorf("schedule min interval (KOD_SCHEDULE_MIN_INTERVAL) must be at least 1s, got %s", c.ScheduleMinInterval))
	}
	errs = append(errs, c.validateBackend()...)
	return errors.Join(append(errs, c.validateRunner()...)...)
}

// validateRunner checks the settings of step containers and runs.
func (c *Config) validateRunner() []error {
	var errs []error
	if c.StepMemory != 0 && c.StepMemory < 6<<20 {
		errs = append(errs, fmt.Errorf("step memory (KOD_STEP_MEMORY) must be 0 (no limit) or at least 6m, got %s", c.StepMemory))
	}
	if c.StepCPUs < 0 || c.StepCPUs > 1024 {
		errs = append(errs, fmt.Errorf("step CPUs (KOD_STEP_CPUS) must be between 0 (no limit) and 1024, got %g", c.StepCPUs))
	}
	if c.StepPIDs < 0 {
		errs = append(errs, fmt.Errorf("step PIDs (KOD_STEP_PIDS) must be 0 (no limit) or more, got %d", c.StepPIDs))
	}
	if c.CacheLimit <= 0 {
		errs = append(errs, fmt.Errorf("cache limit (KOD_CACHE_LIMIT) must be positive, got %s", c.CacheLimit))
	}
	if c.ArtifactLimit <= 0 {
		errs = append(errs, fmt.Errorf("artifact limit (KOD_ARTIFACT_LIMIT) must be positive, got %s", c.ArtifactLimit))
	}
	if c.StepLogLimit < 64<<10 {
		errs = append(errs, fmt.Errorf("step log limit (KOD_STEP_LOG_LIMIT) must be at least 64k, got %s", c.StepLogLimit))
	}
	switch c.PullPolicy {
	case "if-not-present", "always", "never":
	default:
		errs = append(errs, fmt.Errorf("pull policy (KOD_PULL_POLICY) must be if-not-present, always or never, got %q", c.PullPolicy))
	}
	if c.RunRetention < 0 {
		errs = append(errs, fmt.Errorf("run retention (KOD_RUN_RETENTION) must be 0 (keep all) or more, got %d", c.RunRetention))
	}
	if c.CloneDepth < 0 {
		errs = append(errs, fmt.Errorf("clone depth (KOD_CLONE_DEPTH) must be 0 (all history) or more, got %d", c.CloneDepth))
	}
	return errs
}

// ParseRetrySchedule reads KOD_WEBHOOK_RETRY_SCHEDULE: comma-separated
// positive durations ("30s,5m,30m", or seconds), the waits after failed
// attempts 1, 2, ...; "" means webhook.DefaultSchedule. It exists so tests
// need not wait half an hour.
func ParseRetrySchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		d, err := time.ParseDuration(part)
		if n, nerr := strconv.Atoi(part); nerr == nil {
			d, err = time.Duration(n)*time.Second, nil
		}
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("webhook retry schedule (KOD_WEBHOOK_RETRY_SCHEDULE): %q is not a positive duration (e.g. 30s,5m,30m)", part)
		}
		out = append(out, d)
	}
	return out, nil
}

// RegistryPolicy returns the host policy of image pulls:
// KOD_REGISTRY_ALLOWED_HOSTS, or the server's one host policy
// (KOD_WEBHOOK_ALLOWED_HOSTS) when it is empty. Errors are parse errors
// naming the setting.
func (c *Config) RegistryPolicy() (*netpolicy.Policy, error) {
	if strings.TrimSpace(c.RegistryAllowedHosts) == "" {
		return netpolicy.Parse(c.WebhookAllowedHosts)
	}
	return netpolicy.ParseFor(netpolicy.RegistrySetting, c.RegistryAllowedHosts)
}
