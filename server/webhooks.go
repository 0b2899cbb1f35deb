package server

import (
	"context"
	"log/slog"

	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/netpolicy"
	"github.com/kod-forge/kod/webhook"
)

// newDispatcher builds the webhook dispatcher from the settings (already
// validated).
func newDispatcher(cfg config.Config, store webhook.Store, onAttempt func(string), log *slog.Logger) (*webhook.Dispatcher, error) {
	policy, err := netpolicy.Parse(cfg.WebhookAllowedHosts)
	if err != nil {
		return nil, err
	}
	schedule, err := config.ParseRetrySchedule(cfg.WebhookRetrySchedule)
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
