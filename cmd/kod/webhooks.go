package main

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/webhook"
)

// parseRetrySchedule reads KOD_WEBHOOK_RETRY_SCHEDULE: comma-separated
// positive durations ("30s,5m,30m", or seconds), the waits after failed
// attempts 1, 2, ...; "" means webhook.DefaultSchedule. It exists so tests
// need not wait half an hour.
func parseRetrySchedule(s string) ([]time.Duration, error) {
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

// newDispatcher builds the webhook dispatcher from the settings (already
// validated).
func newDispatcher(cfg ServeConfig, store webhook.Store, onAttempt func(string), log *slog.Logger) (*webhook.Dispatcher, error) {
	policy, err := netpolicy.Parse(cfg.WebhookAllowedHosts)
	if err != nil {
		return nil, err
	}
	schedule, err := parseRetrySchedule(cfg.WebhookRetrySchedule)
	if err != nil {
		return nil, err
	}
	return webhook.New(webhook.Config{Policy: policy, Schedule: schedule, OnAttempt: onAttempt}, store, log)
}

// secretSource gives the runner a repository's decrypted secrets.
type secretSource struct {
	store forge.SecretStore
	box   *forge.SecretBox // nil without KOD_ENCRYPTION_KEY
}

// RunSecrets implements runner.Secrets.
func (s secretSource) RunSecrets(ctx context.Context, repo string) ([]forge.SecretValue, error) {
	return forge.RepoSecrets(ctx, s.store, s.box, repo)
}
