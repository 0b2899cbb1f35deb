package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/kod-forge/kod/forge"
	"github.com/kod-forge/kod/netpolicy"
)

// UserAgent is sent with every delivery (Kod).
const UserAgent = "Kod-Webhooks"

// Sign returns the signature header value of body under secret:
// "sha256=" + hex HMAC-SHA256 (Kod's X-Kod-Signature-256, GitHub's
// X-Hub-Signature-256).
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// newClient returns the client deliveries are sent with: every connection
// through the host policy, no proxy, redirects not followed (a 3xx is an
// unsuccessful answer), and timeout for the whole exchange.
func newClient(policy *netpolicy.Policy, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // a proxy would connect on our behalf, out of the policy's sight
			DialContext:           policy.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          16,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   timeout,
			ExpectContinueTimeout: time.Second,
		},
		Timeout:       timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send makes one attempt: POST the stored payload with Kod's headers (and
// GitHub's equivalents, same values, so receivers built for GitHub verify
// it). It returns the response status (0 if none) and, unless the status
// is 2xx, an error meant for the delivery record.
func (d *Dispatcher) send(ctx context.Context, del *forge.Delivery, secret string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, del.URL, bytes.NewReader(del.Payload))
	if err != nil {
		return 0, fmt.Errorf("invalid webhook URL: %v", err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", UserAgent)
	h.Set("X-Kod-Event", string(del.Event))
	h.Set("X-Kod-Delivery", del.ID)
	h.Set("X-GitHub-Event", string(del.Event))
	h.Set("X-GitHub-Delivery", del.ID)
	if secret != "" {
		sig := Sign(secret, del.Payload)
		h.Set("X-Kod-Signature-256", sig)
		h.Set("X-Hub-Signature-256", sig)
	}
	res, err := d.client.Do(req)
	if err != nil {
		return 0, d.attemptError(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return res.StatusCode, nil
	case res.StatusCode >= 300 && res.StatusCode < 400:
		return res.StatusCode, fmt.Errorf("HTTP %d (redirects are not followed)", res.StatusCode)
	}
	return res.StatusCode, fmt.Errorf("HTTP %d", res.StatusCode)
}

// attemptError turns a client error into a clear message without the URL
// (which may carry credentials).
func (d *Dispatcher) attemptError(err error) error {
	var refused *netpolicy.RefusedError
	if errors.As(err, &refused) {
		return fmt.Errorf("refused by the outbound host policy: %w", refused)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("timed out after %s", d.cfg.Timeout)
		}
		return ue.Err
	}
	return err
}
