package runner

import (
	"context"
	"fmt"

	"github.com/kod-forge/kod/forge"
)

// Secrets gives the runner the decrypted secrets of a repository (the
// server wires it over forge.RepoSecrets). Values are held in memory for
// the run only: injected into each step container's environment and
// masked as MaskText in everything the run records.
type Secrets interface {
	// RunSecrets returns the secrets of repo. An error (a wrong key, an
	// altered record) fails the run at setup with the error's text, which
	// never contains a value.
	RunSecrets(ctx context.Context, repo string) ([]forge.SecretValue, error)
}

// loadSecrets decrypts the repository's secrets for this run and prepares
// their masker.
func (x *execution) loadSecrets(ctx context.Context) error {
	if x.r.cfg.Secrets == nil {
		return nil
	}
	secrets, err := x.r.cfg.Secrets.RunSecrets(ctx, x.currentRepo(ctx))
	if err != nil {
		return fmt.Errorf("reading the repository secrets: %w", err)
	}
	values := make([]string, len(secrets))
	for i, s := range secrets {
		values[i] = s.Value
	}
	x.secrets, x.mask = secrets, newMasker(values)
	return nil
}

// secretEnv returns the secrets as "NAME=value" entries.
func (x *execution) secretEnv() []string {
	env := make([]string, len(x.secrets))
	for i, s := range x.secrets {
		env[i] = s.Name + "=" + s.Value
	}
	return env
}
