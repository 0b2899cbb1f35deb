// Package client is a typed Go client of kod's REST API (the routes of Kod's
// API reference plus kod's additions). Every method takes ctx first and
// returns an *Error carrying the server's status and `{"error": "..."}`
// message when the server refuses, or an *UnreachableError when it cannot be
// reached at all.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kod-forge/kod/forge"
)

// Client talks to one kod server with one token. The zero value is not
// usable; create it with New.
type Client struct {
	base  *url.URL
	token string
	// HTTP sends the requests. Its Timeout must be zero: log streams and
	// backups last as long as they last (a followed run may wait in the
	// queue before its first byte).
	HTTP *http.Client
	// Timeout bounds each request that is not a stream (default 2 min);
	// ctx may end it sooner.
	Timeout time.Duration
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultHTTPClient is used by New: no overall timeout (streams), the
// default transport's bounded connection set-up.
func DefaultHTTPClient() *http.Client {
	return &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
}

// New returns a client of the server at baseURL (http or https, e.g.
// "http://localhost:3000"; a path prefix is kept) authenticating with token
// ("" sends no credential). The URL is checked; the server is not contacted.
func New(baseURL, token string) (*Client, error) {
	u, err := ParseServerURL(baseURL)
	if err != nil {
		return nil, err
	}
	return &Client{base: u, token: token, HTTP: DefaultHTTPClient(), Timeout: 2 * time.Minute, UserAgent: "kod-cli"}, nil
}

// ParseServerURL checks that s is an absolute http(s) URL without query,
// fragment or credentials and returns it without a trailing slash.
func ParseServerURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("server URL %q: %w", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("server URL %q must start with http:// or https://", s)
	case u.Host == "":
		return nil, fmt.Errorf("server URL %q has no host", s)
	case u.User != nil:
		return nil, fmt.Errorf("server URL %q must not carry credentials (use a token)", s)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("server URL %q must not have a query or fragment", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// BaseURL returns the server URL without a trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// URL returns the absolute URL of an API path such as "/repos/x" whose
// segments are already escaped (see esc), with an optional "?query".
func (c *Client) URL(path string) string {
	u := *c.base
	p, q, _ := strings.Cut(path, "?")
	u.RawPath = c.base.EscapedPath() + p
	if dec, err := url.PathUnescape(u.RawPath); err == nil {
		u.Path = dec
	}
	u.RawQuery = q
	return u.String()
}

// Error is a request the server answered with a non-2xx status. Message is
// the server's `error` field (or the status text when the body has none).
// It matches forge.ErrNotFound, ErrConflict, ErrForbidden, ErrInvalid and
// ErrUnauthorized with errors.Is according to Status.
type Error struct {
	Method  string
	Path    string
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is maps the HTTP status to the forge sentinels.
func (e *Error) Is(target error) bool {
	switch e.Status {
	case http.StatusNotFound:
		return target == forge.ErrNotFound
	case http.StatusConflict:
		return target == forge.ErrConflict
	case http.StatusForbidden:
		return target == forge.ErrForbidden
	case http.StatusBadRequest:
		return target == forge.ErrInvalid
	case http.StatusUnauthorized:
		return target == forge.ErrUnauthorized
	}
	return false
}

// StatusOf returns the HTTP status of err if it is (or wraps) an *Error,
// else 0.
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// UnreachableError is a request that got no HTTP answer (refused
// connection, DNS failure, timeout before the response).
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the kod server at %s: %v", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// do sends method path with body (JSON-encoded unless nil) and decodes a
// 2xx JSON answer into out (unless nil). Non-2xx answers are *Error.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	callCtx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	res, err := c.send(callCtx, method, path, body, nil)
	if err != nil {
		if ctx.Err() == nil && callCtx.Err() != nil {
			return &UnreachableError{URL: c.BaseURL(), Err: fmt.Errorf("no answer to %s %s within %s", method, path, c.Timeout)}
		}
		return err
	}
	defer res.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
	}
	return nil
}

// send performs the request and returns the response if its status is 2xx;
// the caller closes its body. header adds request headers.
func (c *Client) send(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL(path), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	req.Header.Set("User-Agent", c.UserAgent)
	res, err := c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &UnreachableError{URL: c.BaseURL(), Err: unwrapURLError(err)}
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return res, nil
	}
	defer res.Body.Close()
	return nil, errorFrom(method, path, res)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// errorFrom reads Kod's `{"error": "..."}` body of a refused request.
func errorFrom(method, path string, res *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	e := &Error{Method: method, Path: path, Status: res.StatusCode}
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Message = body.Error
	} else if text := strings.TrimSpace(string(data)); text != "" && len(text) < 500 && !strings.HasPrefix(text, "<") {
		e.Message = text
	} else {
		e.Message = fmt.Sprintf("%s %s: %s", method, path, http.StatusText(res.StatusCode))
	}
	return e
}

// Health is GET /health (no authentication): nil when the server answers
// {"status":"ok"}.
func (c *Client) Health(ctx context.Context) error {
	var out struct {
		Status string `json:"status"`
	}
	if err := c.do(ctx, http.MethodGet, "/health", nil, &out); err != nil {
		return err
	}
	if out.Status != "ok" {
		return fmt.Errorf("health: status %q", out.Status)
	}
	return nil
}

// esc escapes one path segment (repository names, ids, branch names).
func esc(s string) string { return url.PathEscape(s) }
