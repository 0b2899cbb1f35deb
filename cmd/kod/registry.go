package main

import (
	"context"
	"strings"
	"time"

	"github.com/kod-forge/kod/netpolicy"
)

// registryCheckTimeout bounds the name resolution of one registry check.
const registryCheckTimeout = 15 * time.Second

// registryPolicy returns the host policy of image pulls:
// KOD_REGISTRY_ALLOWED_HOSTS, or the server's one host policy
// (KOD_WEBHOOK_ALLOWED_HOSTS) when it is empty. Errors are parse errors
// naming the setting.
func (c *ServeConfig) registryPolicy() (*netpolicy.Policy, error) {
	if strings.TrimSpace(c.RegistryAllowedHosts) == "" {
		return netpolicy.Parse(c.WebhookAllowedHosts)
	}
	return netpolicy.ParseFor(netpolicy.RegistrySetting, c.RegistryAllowedHosts)
}

// registryCheck is the sandbox/docker Config.CheckRegistry of the server:
// the registry host of an image to pull must pass policy (allowed by name,
// or every address it resolves to allowed). The engine resolves the name
// again when it pulls, so a name whose answer changes in between (DNS
// rebinding) is not caught; README "Images" says what covers that.
func registryCheck(policy *netpolicy.Policy) func(ctx context.Context, host string) error {
	return func(ctx context.Context, host string) error {
		ctx, cancel := context.WithTimeout(ctx, registryCheckTimeout)
		defer cancel()
		return policy.CheckHost(ctx, host)
	}
}
