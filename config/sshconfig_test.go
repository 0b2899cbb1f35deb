package config

import (
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestSSHSettings(t *testing.T) {
	t.Setenv("KOD_HOME", t.TempDir())
	env := map[string]string{"KOD_SSH_IDLE_TIMEOUT": "90", "KOD_SSH_MAX_SESSION": "3h", "KOD_SSH_MAX_PER_ADDRESS": "4"}
	cfg := Default(t.TempDir())
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	fs.Bool("no-ssh", false, "")
	if err := fs.Parse([]string{"--ssh-max-per-address", "6", "--ssh-port", "0", "--ssh", "--no-ssh"}); err != nil {
		t.Fatal(err)
	}
	if err := Load(&cfg, "", fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.SSHIdleTimeout != 90*time.Second || cfg.SSHMaxSession != 3*time.Hour || cfg.SSHMaxPerAddress != 6 || cfg.SSHPort != 0 || cfg.SSHEnabled {
		t.Errorf("%+v", cfg)
	}
	for k, v := range map[string]string{"KOD_SSH_MAX_PER_ADDRESS": "0", "KOD_SSH_IDLE_TIMEOUT": "0", "KOD_SSH_MAX_SESSION": "forever",
		"KOD_SSH_LOGIN_GRACE_TIME": "0", "KOD_SSH_MAX_UNAUTHENTICATED": "0"} {
		cfg := Default(t.TempDir())
		err := Load(&cfg, "", nil, func(name string) string {
			if name == k {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}
