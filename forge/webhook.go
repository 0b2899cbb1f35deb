package forge

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// WebhookEvent is what a webhook subscribes to (Kod: push, workflow).
type WebhookEvent string

const (
	EventPush     WebhookEvent = "push"     // a branch was updated, created or deleted
	EventWorkflow WebhookEvent = "workflow" // a run reached a final state
)

// Limits on webhook fields (deliberate: Kod had none).
const (
	MaxWebhookURLLen    = 2048
	MaxWebhookSecretLen = 1024
)

// Webhook is a subscription of a URL to a repository's events. Secret, when
// set, signs every delivery (HMAC-SHA256) and is never returned by the API.
// CreatedAt is ms since the epoch (Kod API: GET /repos/:name/webhooks).
type Webhook struct {
	ID string `json:"id"`
	// RepoID is the repository's stable id (the store's key); RepoName
	// is its current name, filled when the store reads the webhook.
	RepoID    string         `json:"repoId"`
	RepoName  string         `json:"repoName,omitempty"`
	URL       string         `json:"url"`
	Events    []WebhookEvent `json:"events"`
	Secret    string         `json:"secret,omitempty"`
	CreatedAt Millis         `json:"createdAt"`
}

// Subscribes reports whether w wants event.
func (w *Webhook) Subscribes(event WebhookEvent) bool { return slices.Contains(w.Events, event) }

// NewWebhook validates a creation request with Kod's rules and messages
// (Kod API: POST /repos/:name/webhooks, 400s: "Webhook URL is required",
// "Webhook URL is invalid", "Webhook URL must use http or https", "Invalid
// webhook events"). events nil means ["push"]; duplicates are dropped. The
// URL is stored normalised. Where it may connect to is decided when a
// delivery is sent (the host policy), not here.
func NewWebhook(repo, rawURL string, events []WebhookEvent, secret string, now Millis) (*Webhook, error) {
	if rawURL == "" {
		return nil, Invalid("Webhook URL is required")
	}
	u, err := url.Parse(rawURL)
	if err != nil || len(rawURL) > MaxWebhookURLLen || !u.IsAbs() {
		return nil, Invalid("Webhook URL is invalid")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, Invalid("Webhook URL must use http or https")
	}
	if u.Hostname() == "" {
		return nil, Invalid("Webhook URL is invalid")
	}
	if events == nil {
		events = []WebhookEvent{EventPush}
	}
	var evs []WebhookEvent
	for _, e := range events {
		if e != EventPush && e != EventWorkflow {
			return nil, Invalid("Invalid webhook events")
		}
		if !slices.Contains(evs, e) {
			evs = append(evs, e)
		}
	}
	if len(evs) == 0 {
		return nil, Invalid("Invalid webhook events")
	}
	if len(secret) > MaxWebhookSecretLen {
		return nil, Invalid("Webhook secret must be at most %d bytes", MaxWebhookSecretLen)
	}
	return &Webhook{ID: NewID(), RepoName: repo, URL: u.String(), Events: evs, Secret: secret, CreatedAt: now}, nil
}

// DeliveryStatus is the state of a delivery (Kod: pending|success|failed).
type DeliveryStatus string

const (
	DeliveryPending DeliveryStatus = "pending"
	DeliverySuccess DeliveryStatus = "success"
	DeliveryFailed  DeliveryStatus = "failed"
)

// Delivery is one event sent (or to be sent) to one webhook (Kod API: GET
// /repos/:name/webhooks/:id/deliveries). Times are ms since the epoch.
// Payload is the exact JSON body; it is signed and sent unchanged on every
// attempt.
type Delivery struct {
	ID        string `json:"id"`
	WebhookID string `json:"webhookId"`
	// RepoID is the repository's stable id (the store's key); RepoName
	// is its current name, filled when the store reads the delivery.
	RepoID         string          `json:"repoId"`
	RepoName       string          `json:"repoName,omitempty"`
	Event          WebhookEvent    `json:"event"`
	URL            string          `json:"url"`
	Status         DeliveryStatus  `json:"status"`
	Attempts       int             `json:"attempts"`
	MaxAttempts    int             `json:"maxAttempts"`
	CreatedAt      Millis          `json:"createdAt"`
	LastAttemptAt  Millis          `json:"lastAttemptAt,omitempty"`
	NextAttemptAt  Millis          `json:"nextAttemptAt,omitempty"`
	ResponseStatus int             `json:"responseStatus,omitempty"`
	Error          string          `json:"error,omitempty"`
	Payload        json.RawMessage `json:"payload"`
	// LeaseUntil is set while an attempt is being sent: the delivery is
	// claimed (and the attempt counted) in the store before the request
	// goes out, so two senders never send it at once and a crash mid-send
	// is found again at the next start.
	LeaseUntil Millis `json:"leaseUntil,omitempty"`
	// Seq orders deliveries by creation; assigned by the store.
	Seq uint64 `json:"seq"`
}

// Receiver returns the host of d.URL (a lower-case name or an address,
// without port): the receiver whose attempt slots d shares. "" if the URL
// does not parse (webhook URLs are checked when the webhook is created).
func (d *Delivery) Receiver() string {
	u, err := url.Parse(d.URL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// Due reports whether d waits for an attempt at or before now (ms).
func (d *Delivery) Due(now Millis) bool {
	return d.Status == DeliveryPending && d.LeaseUntil == 0 && d.NextAttemptAt <= now
}

// WebhookStore keeps webhooks, indexed by repository id (methods take
// the repository name); they stay with a renamed repository and go with a
// deleted one.
type WebhookStore interface {
	// CreateWebhook stores w; ErrConflict if its id exists.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// GetWebhook returns a webhook by id; ErrNotFound ("Webhook not found").
	GetWebhook(ctx context.Context, id string) (*Webhook, error)
	// ListWebhooks returns the webhooks of repo, oldest first.
	ListWebhooks(ctx context.Context, repo string) ([]*Webhook, error)
	// DeleteWebhook removes a webhook and its deliveries; ErrNotFound.
	DeleteWebhook(ctx context.Context, id string) error
}

// MaxDeliveriesKept is how many finished deliveries are kept per webhook;
// older finished ones are pruned when new ones are stored. Pending
// deliveries are never pruned.
const MaxDeliveriesKept = 100

// DeliveryStore keeps deliveries, indexed by webhook (newest first) and by
// the time their next attempt is due.
type DeliveryStore interface {
	// CreateDeliveries stores ds in one transaction (assigning Seq) and
	// prunes each webhook's finished deliveries beyond MaxDeliveriesKept.
	CreateDeliveries(ctx context.Context, ds []*Delivery) error
	// GetDelivery returns a delivery by id; ErrNotFound ("Webhook delivery
	// not found").
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	// ListDeliveries returns the deliveries of a webhook, newest first, at
	// most limit (0 = all).
	ListDeliveries(ctx context.Context, webhookID string, limit int) ([]*Delivery, error)
	// DueDeliveries returns up to limit (0 = no limit) deliveries that are
	// Due at now, earliest first. A non-nil take is asked, in that order and
	// before the delivery is read, about each one by its repository and
	// Receiver; only those it takes are returned. take runs inside the
	// store's read transaction: it must not call the store.
	DueDeliveries(ctx context.Context, now Millis, limit int, take func(repo, receiver string) bool) ([]*Delivery, error)
	// LeasedDeliveries returns every delivery with a lease (being sent, or
	// interrupted by a crash).
	LeasedDeliveries(ctx context.Context) ([]*Delivery, error)
	// UpdateDelivery applies fn inside one transaction, keeping the due
	// index in step; fn's error aborts and is returned. ErrNotFound.
	UpdateDelivery(ctx context.Context, id string, fn func(*Delivery) error) (*Delivery, error)
}
