package client

import (
	"context"
	"net/http"
)

// Secret is a repository secret as listed: never its value (Kod API: GET
// /repos/:name/secrets). Times are ms.
type Secret struct {
	Name      string `json:"name"`
	RepoName  string `json:"repoName"`
	CreatedAt int64  `json:"createdAt"`
	UpdatedAt int64  `json:"updatedAt"`
}

// ListSecrets is GET /repos/:name/secrets.
func (c *Client) ListSecrets(ctx context.Context, repo string) ([]Secret, error) {
	out := []Secret{}
	return out, c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/secrets", nil, &out)
}

// SetSecret is PUT /repos/:name/secrets/:secretName {value} -> 200.
func (c *Client) SetSecret(ctx context.Context, repo, name, value string) error {
	return c.do(ctx, http.MethodPut, "/repos/"+esc(repo)+"/secrets/"+esc(name), map[string]string{"value": value}, nil)
}

// DeleteSecret is DELETE /repos/:name/secrets/:secretName -> 204.
func (c *Client) DeleteSecret(ctx context.Context, repo, name string) error {
	return c.do(ctx, http.MethodDelete, "/repos/"+esc(repo)+"/secrets/"+esc(name), nil, nil)
}

// Webhook is a repository webhook (Kod API: GET /repos/:name/webhooks); its
// secret is never returned. CreatedAt is ms.
type Webhook struct {
	ID        string   `json:"id"`
	RepoName  string   `json:"repoName"`
	URL       string   `json:"url"`
	Events    []string `json:"events"`
	CreatedAt int64    `json:"createdAt"`
}

// WebhookRequest is POST /repos/:name/webhooks; nil Events means ["push"].
type WebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events,omitempty"`
	Secret string   `json:"secret,omitempty"`
}

// Delivery is one webhook delivery (Kod API: GET
// /repos/:name/webhooks/:id/deliveries). Times are ms; 0 means unset.
type Delivery struct {
	ID             string `json:"id"`
	WebhookID      string `json:"webhookId"`
	RepoName       string `json:"repoName"`
	Event          string `json:"event"`
	URL            string `json:"url"`
	Status         string `json:"status"`
	Attempts       int    `json:"attempts"`
	MaxAttempts    int    `json:"maxAttempts"`
	CreatedAt      int64  `json:"createdAt"`
	LastAttemptAt  int64  `json:"lastAttemptAt,omitempty"`
	NextAttemptAt  int64  `json:"nextAttemptAt,omitempty"`
	ResponseStatus int    `json:"responseStatus,omitempty"`
	Error          string `json:"error,omitempty"`
}

// ListWebhooks is GET /repos/:name/webhooks.
func (c *Client) ListWebhooks(ctx context.Context, repo string) ([]Webhook, error) {
	out := []Webhook{}
	return out, c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/webhooks", nil, &out)
}

// CreateWebhook is POST /repos/:name/webhooks -> 201.
func (c *Client) CreateWebhook(ctx context.Context, repo string, req WebhookRequest) (*Webhook, error) {
	var out Webhook
	return &out, c.do(ctx, http.MethodPost, "/repos/"+esc(repo)+"/webhooks", req, &out)
}

// DeleteWebhook is DELETE /repos/:name/webhooks/:id -> 204.
func (c *Client) DeleteWebhook(ctx context.Context, repo, id string) error {
	return c.do(ctx, http.MethodDelete, "/repos/"+esc(repo)+"/webhooks/"+esc(id), nil, nil)
}

// Deliveries is GET /repos/:name/webhooks/:id/deliveries, newest first.
func (c *Client) Deliveries(ctx context.Context, repo, webhookID string) ([]Delivery, error) {
	out := []Delivery{}
	return out, c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/webhooks/"+esc(webhookID)+"/deliveries", nil, &out)
}

// RetryDelivery is POST /repos/:name/webhooks/:id/deliveries/:deliveryId/retry
// -> 202: the delivery is sent again at once.
func (c *Client) RetryDelivery(ctx context.Context, repo, webhookID, deliveryID string) error {
	return c.do(ctx, http.MethodPost, "/repos/"+esc(repo)+"/webhooks/"+esc(webhookID)+"/deliveries/"+esc(deliveryID)+"/retry", nil, nil)
}
