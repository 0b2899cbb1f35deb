package client

import (
	"context"
	"net/http"
	"net/url"
)

// Token is an API token as listed (Kod API: GET /tokens): never its
// secret. Times are ms since the epoch; 0 means unset.
type Token struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	CreatedAt   int64    `json:"createdAt"`
	LastUsedAt  int64    `json:"lastUsedAt,omitempty"`
	ExpiresAt   int64    `json:"expiresAt,omitempty"`
	Permissions []string `json:"permissions"`
	Username    string   `json:"username,omitempty"`
}

// TokenRequest is POST /tokens. Nil Permissions means the server default
// (repo:read, repo:write); ExpiresInDays 0 means no expiry.
type TokenRequest struct {
	Name          string   `json:"name"`
	Permissions   []string `json:"permissions,omitempty"`
	ExpiresInDays int      `json:"expiresInDays,omitempty"`
	Username      string   `json:"username,omitempty"`
}

// NewToken is the answer to POST /tokens: the only time Token (the secret)
// is shown.
type NewToken struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Token       string   `json:"token"`
	Permissions []string `json:"permissions"`
	ExpiresAt   *int64   `json:"expiresAt"`
	Username    *string  `json:"username"`
	Message     string   `json:"message"`
}

// ListTokens is GET /tokens (admin).
func (c *Client) ListTokens(ctx context.Context) ([]Token, error) {
	out := []Token{}
	return out, c.do(ctx, http.MethodGet, "/tokens", nil, &out)
}

// CreateToken is POST /tokens (admin) -> 201.
func (c *Client) CreateToken(ctx context.Context, req TokenRequest) (*NewToken, error) {
	var out NewToken
	return &out, c.do(ctx, http.MethodPost, "/tokens", req, &out)
}

// DeleteToken is DELETE /tokens/:id (admin) -> 204.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/tokens/"+esc(id), nil, nil)
}

// Key is an SSH public key (Kod API: GET /keys). CreatedAt is ms.
type Key struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	Name        string `json:"name"`
	PublicKey   string `json:"publicKey"`
	KeyType     string `json:"keyType"`
	Fingerprint string `json:"fingerprint"`
	CreatedAt   int64  `json:"createdAt"`
	// AddedByTokenID and AddedByAdmin name the token that added the key,
	// which decides what it grants (kod's addition; "" for keys stored
	// before kod recorded it, which grant nothing).
	AddedByTokenID string `json:"addedByTokenId,omitempty"`
	AddedByAdmin   bool   `json:"addedByAdmin"`
}

// KeyRequest is POST /keys; Username only for admin tokens.
type KeyRequest struct {
	PublicKey string `json:"publicKey"`
	Name      string `json:"name,omitempty"`
	Username  string `json:"username,omitempty"`
}

// ListKeys is GET /keys: the token's own keys, or username's (admin).
func (c *Client) ListKeys(ctx context.Context, username string) ([]Key, error) {
	path := "/keys"
	if username != "" {
		path += "?username=" + url.QueryEscape(username)
	}
	out := []Key{}
	return out, c.do(ctx, http.MethodGet, path, nil, &out)
}

// AddKey is POST /keys -> 201.
func (c *Client) AddKey(ctx context.Context, req KeyRequest) (*Key, error) {
	var out Key
	return &out, c.do(ctx, http.MethodPost, "/keys", req, &out)
}

// DeleteKey is DELETE /keys/:id -> 204.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/keys/"+esc(id), nil, nil)
}
