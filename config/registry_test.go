package config

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kod-forge/kod/netpolicy"
)

// TestRegistrySettings: image pulls follow the one host policy unless
// KOD_REGISTRY_ALLOWED_HOSTS gives them their own, which refusals name.
func TestRegistrySettings(t *testing.T) {
	t.Parallel()
	load := func(env map[string]string) (Config, error) {
		cfg := Default(t.TempDir())
		return cfg, Load(&cfg, "", nil, func(k string) string { return env[k] })
	}
	ctx := context.Background()
	check := func(cfg Config, host string) error {
		p, err := cfg.RegistryPolicy()
		if err != nil {
			t.Fatal(err)
		}
		return p.CheckHost(ctx, host)
	}

	cfg, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := check(cfg, "127.0.0.1"); !errors.Is(err, netpolicy.ErrRefused) || !strings.Contains(err.Error(), netpolicy.Setting) {
		t.Errorf("default policy, loopback registry: %v", err)
	}
	cfg, _ = load(map[string]string{netpolicy.Setting: "external,loopback"})
	if err := check(cfg, "127.0.0.1"); err != nil {
		t.Errorf("loopback allowed for everything: %v", err)
	}
	// A registry policy of its own: a local registry without opening
	// webhooks to loopback, and only the registries listed.
	cfg, err = load(map[string]string{netpolicy.RegistrySetting: "docker.io,127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := check(cfg, "127.0.0.1"); err != nil {
		t.Errorf("listed local registry: %v", err)
	}
	if err := check(cfg, "8.8.8.8"); !errors.Is(err, netpolicy.ErrRefused) || !strings.Contains(err.Error(), netpolicy.RegistrySetting) {
		t.Errorf("unlisted registry: %v", err)
	}
	if cfg.WebhookAllowedHosts != netpolicy.Default {
		t.Errorf("webhook policy changed to %q", cfg.WebhookAllowedHosts)
	}
	if _, err := load(map[string]string{netpolicy.RegistrySetting: "bad host"}); err == nil || !strings.Contains(err.Error(), netpolicy.RegistrySetting) {
		t.Errorf("bad registry policy: %v", err)
	}
}
