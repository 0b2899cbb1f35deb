package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0": 0, "1048576": 1 << 20, "512k": 512 << 10, "64m": 64 << 20, "2g": 2 << 30,
		"2GiB": 2 << 30, "16MB": 16 << 20, " 3 mib ": 3 << 20, "10b": 10,
	} {
		got, err := parseByteSize(in)
		if err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
		if back, err := parseByteSize(got.String()); err != nil || back != got {
			t.Errorf("%s does not read back: %d %v", got, back, err)
		}
	}
	for _, bad := range []string{"", "m", "-1m", "1.5g", "2t", "abc", "99999999999999g"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) should fail", bad)
		}
	}
}

func TestRunnerSettings(t *testing.T) {
	t.Setenv("KOD_HOME", t.TempDir())
	env := map[string]string{"KOD_STEP_MEMORY": "512m", "KOD_STEP_LOG_LIMIT": "1m", "KOD_CANCEL_SUPERSEDED": "off"}
	cfg := Default(t.TempDir())
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	RegisterFlags(fs)
	fs.Bool("no-ssh", false, "")
	if err := fs.Parse([]string{"--step-cpus", "1.5", "--step-pids", "64", "--pull-policy", "never", "--run-retention", "7"}); err != nil {
		t.Fatal(err)
	}
	if err := Load(&cfg, "", fs, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if cfg.StepMemory != 512<<20 || cfg.StepCPUs != 1.5 || cfg.StepPIDs != 64 || cfg.StepLogLimit != 1<<20 ||
		cfg.PullPolicy != "never" || cfg.RunRetention != 7 || cfg.CancelSuperseded {
		t.Errorf("settings: %+v", cfg)
	}
	def := Default(t.TempDir())
	if def.StepMemory != 2<<30 || def.StepCPUs != 2 || def.StepPIDs != 1024 || def.StepLogLimit != 16<<20 ||
		def.PullPolicy != "if-not-present" || def.RunRetention != 100 || !def.CancelSuperseded {
		t.Errorf("defaults: %+v", def)
	}
	for name, v := range map[string]string{
		"KOD_STEP_MEMORY": "1m", "KOD_STEP_CPUS": "-1", "KOD_STEP_PIDS": "-2", "KOD_STEP_LOG_LIMIT": "1k",
		"KOD_PULL_POLICY": "sometimes", "KOD_RUN_RETENTION": "-1",
	} {
		cfg := Default(t.TempDir())
		err := Load(&cfg, "", nil, func(k string) string {
			if k == name {
				return v
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: error %v, want one naming %s", name, v, err, name)
		}
	}
}
