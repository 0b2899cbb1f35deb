package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kod-forge/kod/client"
	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/server"
)

// minGit is the oldest git kod is tested with for serving and cloning.
var minGit = [2]int{2, 20}

// check is one line of `kod doctor`.
type check struct {
	Name   string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

func newDoctorCmd(a *app) *cobra.Command {
	var dirs serverDirFlags
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check git, Docker, the step image, config, directories, server and token",
		Long: `Check what kod needs and print one OK or FAIL line per check: git
version, Docker engine reachable (and its API version), default step image
present, config, data and repos directories writable, server health, and
that the server accepts the token. With KOD_BACKEND=kubernetes the cluster
is checked instead of Docker: reachable, namespace, permissions, storage
class, nodes. The exit status is 1 if any check fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			u := a.ui(cmd)
			var checks []check
			add := func(c check) {
				checks = append(checks, c)
				if !u.json {
					word, color := "OK  ", colGreen
					if !c.OK {
						word, color = "FAIL", colRed
					}
					u.printf("%s  %-12s %s\n", u.paint(color, word), c.Name, c.Detail)
				}
			}
			add(checkGit(ctx))
			cfg, cfgCheck := a.checkConfig(cmd, &dirs)
			if cfg.Backend == config.BackendKubernetes {
				for _, c := range checkKubernetes(ctx, cfg) {
					add(c)
				}
			} else {
				for _, c := range checkDocker(ctx, cfg.DefaultImage) {
					add(c)
				}
			}
			add(cfgCheck)
			add(checkWritable("data dir", cfg.DataDir))
			add(checkWritable("repos dir", cfg.ReposDir))
			for _, c := range a.checkServer(ctx) {
				add(c)
			}
			if u.json {
				if err := u.emitJSON(checks); err != nil {
					return err
				}
			}
			for _, c := range checks {
				if !c.OK {
					return &ExitError{Code: 1}
				}
			}
			return nil
		},
	}
	dirs.register(cmd.Flags())
	return cmd
}

var gitVersionRE = regexp.MustCompile(`git version (\d+)\.(\d+)`)

func checkGit(ctx context.Context) check {
	out, err := exec.CommandContext(ctx, "git", "--version").Output()
	if err != nil {
		return check{"git", false, fmt.Sprintf("git is not usable: %v", err)}
	}
	v := strings.TrimSpace(string(out))
	m := gitVersionRE.FindStringSubmatch(v)
	if m == nil {
		return check{"git", false, fmt.Sprintf("unrecognised version %q", v)}
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < minGit[0] || major == minGit[0] && minor < minGit[1] {
		return check{"git", false, fmt.Sprintf("%s is older than %d.%d", v, minGit[0], minGit[1])}
	}
	return check{"git", true, v}
}

// checkDocker pings the engine and checks the default step image.
func checkDocker(ctx context.Context, image string) []check {
	d, err := docker.New(docker.Config{}, nil)
	if err != nil {
		return []check{{"docker", false, err.Error()}, {"image", false, "not checked: no engine"}}
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	version, err := d.Ping(ctx)
	if err != nil {
		return []check{{"docker", false, fmt.Sprintf("the engine is unreachable: %v", err)}, {"image", false, "not checked: no engine"}}
	}
	engine := check{"docker", true, "engine reachable, API " + version}
	switch ok, err := d.ImagePresent(ctx, image); {
	case err != nil:
		return []check{engine, {"image", false, fmt.Sprintf("checking %s: %v", image, err)}}
	case !ok && image == config.DefaultImage:
		return []check{engine, {"image", false, image + " is missing: build it with scripts/build-images"}}
	case !ok:
		return []check{engine, {"image", false, image + " is missing: pull it (docker pull " + image + ")"}}
	}
	return []check{engine, {"image", true, image + " is present"}}
}

// checkConfig resolves the server settings and checks the config file: it
// must parse, and hold the token with mode 0600 at most.
func (a *app) checkConfig(cmd *cobra.Command, dirs *serverDirFlags) (config.Config, check) {
	cfg, err := dirs.resolve(a, cmd.Flags())
	if err != nil {
		return config.Default(config.Home()), check{"config", false, err.Error()}
	}
	path := a.configPath()
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return cfg, check{"config", true, "no " + path + " (defaults and environment)"}
	case err != nil:
		return cfg, check{"config", false, err.Error()}
	}
	if _, err := a.settings(); err != nil {
		return cfg, check{"config", false, err.Error()}
	}
	if m, _ := readConfigFile(path); stringKey(m, configKeyToken) != "" && fi.Mode().Perm()&0o077 != 0 {
		return cfg, check{"config", false, fmt.Sprintf("%s holds a token but has mode %#o: chmod 600 %s", path, fi.Mode().Perm(), path)}
	}
	return cfg, check{"config", true, path}
}

// checkWritable creates and removes a file in dir, or in the nearest
// existing parent when dir does not exist yet (the server creates it).
func checkWritable(name, dir string) check {
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			return check{name, false, dir + ": no existing parent directory"}
		}
		probe = parent
	}
	f, err := os.CreateTemp(probe, ".kod-doctor-*")
	if err != nil {
		return check{name, false, fmt.Sprintf("%s is not writable: %v", probe, err)}
	}
	f.Close()
	os.Remove(f.Name())
	if probe != dir {
		return check{name, true, dir + " (will be created)"}
	}
	return check{name, true, dir}
}

// checkServer checks GET /health and that the token is accepted.
func (a *app) checkServer(ctx context.Context) []check {
	s, err := a.settings()
	if err != nil {
		return []check{{"server", false, err.Error()}}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.New(s.Server, s.Token)
	if err != nil {
		return []check{{"server", false, err.Error()}}
	}
	if err := c.Health(ctx); err != nil {
		return []check{{"server", false, err.Error()}, {"auth", false, "not checked: no server"}}
	}
	out := []check{{"server", true, s.Server + " is healthy (from " + s.ServerFrom + ")"}}
	if s.Token == "" {
		return append(out, check{"auth", false, "no token: run `kod init`, pass -t/--token or set KOD_API_TOKEN"})
	}
	_, err = c.ListRepos(ctx)
	switch {
	case err == nil:
		return append(out, check{"auth", true, "the token (from " + s.TokenFrom + ") is accepted"})
	case client.StatusOf(err) == http.StatusForbidden:
		return append(out, check{"auth", true, "the token (from " + s.TokenFrom + ") is accepted (it may not list repositories)"})
	}
	return append(out, check{"auth", false, fmt.Sprintf("the token (from %s) is refused: %v", s.TokenFrom, err)})
}

// checkKubernetes runs the cluster checks of the Kubernetes backend.
func checkKubernetes(ctx context.Context, cfg config.Config) []check {
	k, err := server.NewKubernetes(cfg, nil)
	if err != nil {
		return []check{{"kubernetes", false, err.Error()}}
	}
	defer k.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []check
	for _, f := range k.Check(ctx) {
		out = append(out, check{"kube " + f.Name, f.OK, f.Detail})
	}
	return out
}
