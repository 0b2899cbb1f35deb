package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	os.WriteFile(file, []byte(`{"port": 4000, "dataDir": "/from/file", "reposDir": "/file/repos", "sshEnabled": "no", "stopGrace": 3, "serverUrl": "ignored"}`), 0o600)
	env := map[string]string{
		"KOD_DATA_DIR":           "/from/env",
		"KOD_API_TOKEN":          "legacy-alias",
		"KOD_SSH_PORT":           "2300",
		"KOD_DEFAULT_IMAGE":      "alpine:3.20",
		"KOD_SSH_ANONYMOUS_READ": "on",
	}
	cfg := Default(dir)
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	fs.Bool("no-ssh", false, "")
	if err := fs.Parse([]string{"--ssh-port", "2400", "-p", "5000"}); err != nil {
		t.Fatal(err)
	}
	if err := Load(&cfg, file, fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"flag beats file", cfg.Port, 5000},
		{"env beats file", cfg.DataDir, "/from/env"},
		{"file beats default", cfg.ReposDir, "/file/repos"},
		{"flag beats env", cfg.SSHPort, 2400},
		{"legacy alias", cfg.AdminToken, "legacy-alias"},
		{"env image", cfg.DefaultImage, "alpine:3.20"},
		{"boolean words", cfg.SSHEnabled, false},
		{"on", cfg.SSHAnonymousRead, true},
		{"seconds as duration", cfg.StopGrace, 3 * time.Second},
		{"default kept", cfg.MaxConcurrentRuns, 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigErrorsNameTheSetting(t *testing.T) {
	t.Setenv("KOD_HOME", t.TempDir()) // no ~/.kod/config.json of the developer
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"KOD_PORT": "abc"}, "KOD_PORT"},
		{map[string]string{"KOD_SSH_ENABLED": "maybe"}, "KOD_SSH_ENABLED"},
		{map[string]string{"KOD_PORT": "70000"}, "KOD_PORT"},
		{map[string]string{"KOD_MAX_CONCURRENT_RUNS": "0"}, "KOD_MAX_CONCURRENT_RUNS"},
	}
	for _, c := range cases {
		cfg := Default(t.TempDir())
		err := Load(&cfg, "", nil, func(k string) string { return c.env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %s", c.env, err, c.want)
		}
	}
	cfg := Default(t.TempDir())
	if err := Load(&cfg, filepath.Join(t.TempDir(), "missing.json"), nil, func(string) string { return "" }); err == nil {
		t.Error("an explicit config file that does not exist must be an error")
	}
}
