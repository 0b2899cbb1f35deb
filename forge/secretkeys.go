package forge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// SecretStore keeps sealed repository secrets, keyed by repository id and
// name; methods take the repository's name. They stay with the repository
// on rename (sealed for its id, see Secret.SealedFor) and go with it on
// delete.
type SecretStore interface {
	// PutSecret stores s, keeping CreatedAt of an existing secret of the
	// same repository and name (Kod: createdAt kept on update). It reports
	// whether the secret is new.
	PutSecret(ctx context.Context, s *Secret) (created bool, err error)
	// ListSecrets returns the secrets of repo sorted by name.
	ListSecrets(ctx context.Context, repo string) ([]*Secret, error)
	// DeleteSecret removes one secret; ErrNotFound if there is none.
	DeleteSecret(ctx context.Context, repo, name string) error
	// CountSecrets returns the number of secrets of every repository.
	CountSecrets(ctx context.Context) (int, error)
	// SecretKDF returns the stored key derivation parameters, storing fresh
	// first if there are none.
	SecretKDF(ctx context.Context, fresh SecretKDF) (SecretKDF, error)
	// SetSecretKDF replaces the stored key derivation parameters.
	SetSecretKDF(ctx context.Context, kdf SecretKDF) error
}

// OpenSecretBox prepares the secrets key at server start from key
// (KOD_ENCRYPTION_KEY):
//   - no key and no stored secret: (nil, nil), secrets cannot be saved
//     (Kod: 500 "No encryption key configured ...");
//   - no key but stored secrets: an error naming the setting, and the
//     server refuses to start rather than run workflows without them;
//   - a key that is not the one the stored secrets were sealed with: the
//     box is returned with Mismatch set and an error is logged; runs of
//     repositories with secrets then fail at setup naming the key, and new
//     secrets are refused until the right key is configured;
//   - with no stored secret, a new key simply replaces the old one.
func OpenSecretBox(ctx context.Context, store SecretStore, key string, log *slog.Logger) (*SecretBox, error) {
	n, err := store.CountSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("counting stored secrets: %w", err)
	}
	if key == "" {
		if n > 0 {
			return nil, fmt.Errorf("%d repository secrets are stored but no encryption key is configured: "+
				"set KOD_ENCRYPTION_KEY (or --encryption-key) to the key they were saved with", n)
		}
		return nil, nil
	}
	kdf, err := store.SecretKDF(ctx, NewSecretKDF())
	if err != nil {
		return nil, fmt.Errorf("reading the secrets key parameters: %w", err)
	}
	box, err := NewSecretBox(key, kdf)
	if err != nil {
		return nil, err
	}
	switch {
	case kdf.Check == box.Check():
	case kdf.Check == "" || n == 0:
		// First key, or nothing sealed with the old one: adopt this key
		// (with a fresh salt when it replaces another).
		if kdf.Check != "" {
			kdf = NewSecretKDF()
			if box, err = NewSecretBox(key, kdf); err != nil {
				return nil, err
			}
		}
		kdf.Check = box.Check()
		if err := store.SetSecretKDF(ctx, kdf); err != nil {
			return nil, fmt.Errorf("storing the secrets key parameters: %w", err)
		}
	default:
		box.mismatch = true
		log.Error("KOD_ENCRYPTION_KEY is not the key the stored secrets were saved with: "+
			"runs of repositories with secrets will fail and new secrets are refused until the right key is configured",
			"secrets", n)
	}
	return box, nil
}

// RepoSecrets decrypts every secret of repo, sorted by name, for injection
// into a run's steps. A nil box with stored secrets, and any secret that
// does not open, is an error naming the secret and the likely cause (wrapping
// ErrSecretKey), never a garbage value.
func RepoSecrets(ctx context.Context, store SecretStore, box *SecretBox, repo string) ([]SecretValue, error) {
	secrets, err := store.ListSecrets(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("reading the secrets of %s: %w", repo, err)
	}
	if len(secrets) == 0 {
		return nil, nil
	}
	if box == nil {
		return nil, fmt.Errorf("%w: repository %s has secrets but no encryption key is configured (KOD_ENCRYPTION_KEY)", ErrSecretKey, repo)
	}
	out := make([]SecretValue, 0, len(secrets))
	var errs []error
	for _, s := range secrets {
		v, err := box.Open(s.SealedFor(), s.Name, s.Sealed)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, SecretValue{Name: s.Name, Value: string(v)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
