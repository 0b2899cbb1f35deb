package forge

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
)

// Permission is one capability a token can hold (Kod API permission names).
type Permission string

// The Kod permissions. PermAdmin implies every other one.
const (
	PermRepoRead          Permission = "repo:read"
	PermRepoWrite         Permission = "repo:write"
	PermRepoDelete        Permission = "repo:delete"
	PermCollaboratorRead  Permission = "collaborator:read"
	PermCollaboratorWrite Permission = "collaborator:write"
	PermWorkflowRead      Permission = "workflow:read"
	PermWorkflowTrigger   Permission = "workflow:trigger"
	PermSecretsRead       Permission = "secrets:read"
	PermSecretsWrite      Permission = "secrets:write"
	PermWebhookRead       Permission = "webhook:read"
	PermWebhookWrite      Permission = "webhook:write"
	PermAdmin             Permission = "admin"
)

// AllPermissions lists every valid permission, in Kod's documented order.
var AllPermissions = []Permission{
	PermRepoRead, PermRepoWrite, PermRepoDelete,
	PermCollaboratorRead, PermCollaboratorWrite,
	PermWorkflowRead, PermWorkflowTrigger,
	PermSecretsRead, PermSecretsWrite,
	PermWebhookRead, PermWebhookWrite,
	PermAdmin,
}

// DefaultPermissions are given to a token created without a permission list
// (Kod API: POST /tokens).
var DefaultPermissions = []Permission{PermRepoRead, PermRepoWrite}

// ValidPermission reports whether p is one of AllPermissions.
func ValidPermission(p Permission) bool { return slices.Contains(AllPermissions, p) }

// Token is an API token record. The secret itself is never stored: Hash is
// the hex SHA-256 of the token string. Times are milliseconds since the epoch.
type Token struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Hash        string       `json:"hash"`
	CreatedAt   Millis       `json:"createdAt"`
	LastUsedAt  Millis       `json:"lastUsedAt,omitempty"`
	ExpiresAt   Millis       `json:"expiresAt,omitempty"`
	Permissions []Permission `json:"permissions"`
	Username    string       `json:"username,omitempty"`
}

// Has reports whether the token holds perm (admin holds everything).
func (t *Token) Has(perm Permission) bool {
	return slices.Contains(t.Permissions, PermAdmin) || slices.Contains(t.Permissions, perm)
}

// IsAdmin reports whether the token holds the admin permission.
func (t *Token) IsAdmin() bool { return slices.Contains(t.Permissions, PermAdmin) }

// Expired reports whether the token has an expiry at or before now (ms).
func (t *Token) Expired(now Millis) bool { return t.ExpiresAt != 0 && t.ExpiresAt <= now }

// TokenPrefix starts every generated token (Kod: "kod_" + 32 [A-Za-z0-9]).
const TokenPrefix = "kod_"

// NewTokenSecret returns a fresh token string: "kod_" + 32 characters of
// [A-Za-z0-9] from crypto/rand.
func NewTokenSecret() string { return TokenPrefix + randomString(32, mixedAlnum) }

// HashToken returns the hex SHA-256 of a token string, the only form in
// which tokens are stored.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// LooksLikeToken reports whether s has the shape of a kod token. Bootstrap
// admin tokens may have any shape, so this is only a hint for clients.
func LooksLikeToken(s string) bool {
	return strings.HasPrefix(s, TokenPrefix) && len(s) == len(TokenPrefix)+32
}
