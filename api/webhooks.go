package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/netpolicy"
)

// Webhook routes need the permission and repository ownership (Kod: owner
// or admin).
var (
	actWebhookRead  = forge.Action{Perm: forge.PermWebhookRead, OwnerVerb: "manage webhooks"}
	actWebhookWrite = forge.Action{Perm: forge.PermWebhookWrite, OwnerVerb: "manage webhooks"}
)

// DeliveryRetrier sends a stored webhook delivery again at once and
// returns it as recorded after the attempt (webhook.Dispatcher).
type DeliveryRetrier interface {
	Retry(ctx context.Context, deliveryID string) (*forge.Delivery, error)
}

func (s *Server) webhookRoutes() {
	s.handle(http.MethodGet, "/repos/{name}/webhooks", actWebhookRead, s.listWebhooks)
	s.handle(http.MethodPost, "/repos/{name}/webhooks", actWebhookWrite, s.createWebhook)
	s.handle(http.MethodDelete, "/repos/{name}/webhooks/{id}", actWebhookWrite, s.deleteWebhook)
	s.handle(http.MethodGet, "/repos/{name}/webhooks/{id}/deliveries", actWebhookRead, s.listDeliveries)
	s.handle(http.MethodPost, "/repos/{name}/webhooks/{id}/deliveries/{deliveryId}/retry", actWebhookWrite, s.retryDelivery)
	s.handle(http.MethodPost, "/admin/webhooks/resume", actAdmin, s.resumeWebhooks)
}

// webhookJSON is a webhook as the API shows it: never its secret.
type webhookJSON struct {
	ID        string               `json:"id"`
	RepoName  string               `json:"repoName"`
	URL       string               `json:"url"`
	Events    []forge.WebhookEvent `json:"events"`
	CreatedAt forge.Millis         `json:"createdAt"`
}

func toWebhookJSON(h *forge.Webhook) webhookJSON {
	return webhookJSON{ID: h.ID, RepoName: h.RepoName, URL: h.URL, Events: h.Events, CreatedAt: h.CreatedAt}
}

// deliveryJSON is a delivery as the API shows it (Kod's fields, plus the
// payload that was or will be sent).
type deliveryJSON struct {
	ID             string               `json:"id"`
	WebhookID      string               `json:"webhookId"`
	RepoName       string               `json:"repoName"`
	Event          forge.WebhookEvent   `json:"event"`
	URL            string               `json:"url"`
	Status         forge.DeliveryStatus `json:"status"`
	Attempts       int                  `json:"attempts"`
	MaxAttempts    int                  `json:"maxAttempts"`
	CreatedAt      forge.Millis         `json:"createdAt"`
	LastAttemptAt  forge.Millis         `json:"lastAttemptAt,omitempty"`
	NextAttemptAt  forge.Millis         `json:"nextAttemptAt,omitempty"`
	ResponseStatus int                  `json:"responseStatus,omitempty"`
	Error          string               `json:"error,omitempty"`
	Payload        json.RawMessage      `json:"payload,omitempty"`
}

func toDeliveryJSON(d *forge.Delivery) deliveryJSON {
	return deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, RepoName: d.RepoName, Event: d.Event, URL: d.URL, Status: d.Status,
		Attempts: d.Attempts, MaxAttempts: d.MaxAttempts, CreatedAt: d.CreatedAt, LastAttemptAt: d.LastAttemptAt,
		NextAttemptAt: d.NextAttemptAt, ResponseStatus: d.ResponseStatus, Error: d.Error, Payload: d.Payload}
}

// listWebhooks is Kod API GET /repos/:name/webhooks -> 200, oldest first.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	hooks, err := s.Store.ListWebhooks(r.Context(), repo.Name)
	if err != nil {
		return err
	}
	out := make([]webhookJSON, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, toWebhookJSON(h))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// createWebhook is Kod API POST /repos/:name/webhooks {url, events?,
// secret?} -> 201 (rules in forge.NewWebhook).
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	var req struct {
		URL    string               `json:"url"`
		Events []forge.WebhookEvent `json:"events"`
		Secret string               `json:"secret"`
	}
	if err := decodeJSON(w, r, &req); err != nil {
		return err
	}
	hook, err := forge.NewWebhook(repo.Name, req.URL, req.Events, req.Secret, forge.NowMillis())
	if err != nil {
		return err
	}
	if err := s.checkWebhookHost(r.Context(), hook.URL); err != nil {
		return err
	}
	if err := s.Store.CreateWebhook(r.Context(), hook); err != nil {
		return err
	}
	s.log.Info("webhook created", "repo", repo.Name, "webhook", hook.ID, "events", hook.Events, "token", c.p.TokenID)
	writeJSON(w, http.StatusCreated, toWebhookJSON(hook))
	return nil
}

// webhookResumer ends the pause of a restored data dir's webhooks
// (webhook.Dispatcher).
type webhookResumer interface {
	Paused() bool
	Resume(ctx context.Context) error
}

// resumeWebhooks is POST /admin/webhooks/resume (admin; kod's addition):
// a server restored from a backup starts with webhook deliveries paused,
// so that it does not deliver to the original server's receivers; this
// resumes them for good. 200 {"paused": false, "wasPaused": bool}.
func (s *Server) resumeWebhooks(w http.ResponseWriter, r *http.Request, c *call) error {
	res, ok := s.Webhooks.(webhookResumer)
	if !ok {
		return forge.NotFound("Webhooks are not configured on this server")
	}
	was := res.Paused()
	if err := res.Resume(r.Context()); err != nil {
		return err
	}
	if was {
		s.log.Info("webhook deliveries resumed", "token", c.p.TokenID)
	}
	writeJSON(w, http.StatusOK, map[string]bool{"paused": false, "wasPaused": was})
	return nil
}

// checkWebhookHost refuses a webhook URL whose host the host policy
// (KOD_WEBHOOK_ALLOWED_HOSTS) refuses, with the policy's reason, instead of
// storing a webhook that would fail at every delivery. Every delivery
// checks again (the name may resolve elsewhere later); a host that does not
// resolve now is accepted, since it may later.
func (s *Server) checkWebhookHost(ctx context.Context, rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return forge.Invalid("Webhook URL is invalid")
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var refused *netpolicy.RefusedError
	if err := s.HostPolicy.CheckHost(ctx, u.Hostname()); errors.As(err, &refused) {
		return forge.Invalid("Webhook URL is not allowed: %s", refused.Error())
	}
	return nil
}

// webhookOf loads the {id} webhook of the authorised {name} repository; a
// webhook of another repository is "Webhook not found" too.
func (s *Server) webhookOf(r *http.Request, c *call) (*forge.Webhook, error) {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return nil, err
	}
	hook, err := s.Store.GetWebhook(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return nil, err
	}
	if hook.RepoName != repo.Name {
		return nil, forge.NotFound("Webhook not found")
	}
	return hook, nil
}

// deleteWebhook is Kod API DELETE /repos/:name/webhooks/:id -> 204 (also
// for an unknown id, as Kod); its deliveries go with it.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, c *call) error {
	repo, err := c.repo(r.Context(), r)
	if err != nil {
		return err
	}
	hook, err := s.Store.GetWebhook(r.Context(), mux.Vars(r)["id"])
	switch {
	case errors.Is(err, forge.ErrNotFound), err == nil && hook.RepoName != repo.Name:
		// nothing of this repository to delete
	case err != nil:
		return err
	default:
		if err := s.Store.DeleteWebhook(r.Context(), hook.ID); err != nil && !errors.Is(err, forge.ErrNotFound) {
			return err
		}
		s.log.Info("webhook deleted", "repo", repo.Name, "webhook", hook.ID, "token", c.p.TokenID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listDeliveries is Kod API GET /repos/:name/webhooks/:id/deliveries ->
// 200, newest first (the last 100 finished ones are kept, plus any
// pending). 404 "Webhook not found".
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request, c *call) error {
	hook, err := s.webhookOf(r, c)
	if err != nil {
		return err
	}
	ds, err := s.Store.ListDeliveries(r.Context(), hook.ID, 0)
	if err != nil {
		return err
	}
	out := make([]deliveryJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, toDeliveryJSON(d))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// retryDelivery is Kod API POST .../deliveries/:deliveryId/retry -> 202
// with the delivery after an attempt made at once. 404 "Webhook delivery
// not found"; 409 while an attempt is in flight.
func (s *Server) retryDelivery(w http.ResponseWriter, r *http.Request, c *call) error {
	hook, err := s.webhookOf(r, c)
	if err != nil {
		return err
	}
	d, err := s.Store.GetDelivery(r.Context(), mux.Vars(r)["deliveryId"])
	if err != nil {
		return err
	}
	if d.WebhookID != hook.ID {
		return forge.NotFound("Webhook delivery not found")
	}
	if s.Webhooks == nil {
		return errors.New("webhook dispatcher not configured")
	}
	d, err = s.Webhooks.Retry(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, toDeliveryJSON(d))
	return nil
}
