package forge

import (
	"regexp"
	"strings"
)

// MaxSecretValueLen caps a secret's value, bytes (64 KiB).
const MaxSecretValueLen = 64 << 10

// MaxSecretNameLen caps a secret's name (deliberate addition to Kod's rule).
const MaxSecretNameLen = 255

var secretNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidateSecretName applies Kod's rule for secret names: a valid
// environment variable name `^[A-Za-z_][A-Za-z0-9_]*$` (deliberately also at
// most 255 characters). Kod API: PUT /repos/:name/secrets/:secretName, 400.
func ValidateSecretName(name string) error {
	if !secretNameRE.MatchString(name) || len(name) > MaxSecretNameLen {
		return Invalid("Secret name must be a valid environment variable name (letters, digits, underscores)")
	}
	return nil
}

// ValidateSecretValue checks a value before it is sealed: not empty (Kod:
// 400 "Secret value is required"), at most MaxSecretValueLen bytes, and no
// NUL byte (an environment variable cannot carry one).
func ValidateSecretValue(value string) error {
	switch {
	case value == "":
		return Invalid("Secret value is required")
	case len(value) > MaxSecretValueLen:
		return Invalid("Secret value must be at most %d bytes", MaxSecretValueLen)
	case strings.IndexByte(value, 0) >= 0:
		return Invalid("Secret value must not contain NUL bytes")
	}
	return nil
}

// Secret is a stored repository secret. Sealed is the value encrypted by a
// SecretBox for exactly this repository and name; the plaintext is never
// stored. Times are ms since the epoch (Kod API: GET /repos/:name/secrets
// lists {name, repoName, createdAt, updatedAt}, never the value).
type Secret struct {
	Name string `json:"name"`
	// RepoID is the repository's stable id: the store's key and, unless
	// Binding is set, the additional data the value is sealed with.
	// RepoName is the current name, filled when the store reads it.
	RepoID   string `json:"repoId"`
	RepoName string `json:"repoName,omitempty"`
	// Binding is the additional data of a value sealed before repositories
	// had ids (their name then); "" means RepoID.
	Binding   string `json:"binding,omitempty"`
	CreatedAt Millis `json:"createdAt"`
	UpdatedAt Millis `json:"updatedAt"`
	Sealed    string `json:"sealed"`
}

// SealedFor is the additional data s's value is sealed with: its
// repository's id, or the repository name a value sealed before ids was
// bound to (Binding).
func (s *Secret) SealedFor() string {
	if s.Binding != "" {
		return s.Binding
	}
	return s.RepoID
}

// SecretValue is one decrypted secret, held in memory only (by the runner,
// for the life of a run).
type SecretValue struct {
	Name  string
	Value string
}
