package client

import (
	"context"
	"io"
	"net/http"
	"net/url"

	"github.com/kod-forge/kod/forge"
)

// Run is a workflow run record, the server's own shape (Kod API: GET
// /repos/:name/workflows/:id).
type Run = forge.Run

// TriggerRequest is POST /repos/:name/workflows. Empty Branch means "main";
// empty Commit means the branch head; nil Files means every file of
// .kod/workflows.
type TriggerRequest struct {
	Branch string   `json:"branch,omitempty"`
	Commit string   `json:"commit,omitempty"`
	Files  []string `json:"files,omitempty"`
}

// Triggered is the answer to a trigger: {id, status:"queued", message}.
type Triggered struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// StatusReport is GET /workflows/status: counts by status and the 10 most
// recent runs over the readable repositories.
type StatusReport struct {
	Summary map[string]int `json:"summary"`
	Recent  []Run          `json:"recent"`
}

// Trigger is POST /repos/:name/workflows -> 202.
func (c *Client) Trigger(ctx context.Context, repo string, req TriggerRequest) (*Triggered, error) {
	var out Triggered
	return &out, c.do(ctx, http.MethodPost, "/repos/"+esc(repo)+"/workflows", req, &out)
}

// ListRuns is GET /repos/:name/workflows, newest first.
func (c *Client) ListRuns(ctx context.Context, repo string) ([]Run, error) {
	out := []Run{}
	return out, c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/workflows", nil, &out)
}

// GetRun is GET /repos/:name/workflows/:id.
func (c *Client) GetRun(ctx context.Context, repo, id string) (*Run, error) {
	var out Run
	return &out, c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/workflows/"+esc(id), nil, &out)
}

// Cancel is POST /repos/:name/workflows/:id/cancel -> 202.
func (c *Client) Cancel(ctx context.Context, repo, id string) error {
	return c.do(ctx, http.MethodPost, "/repos/"+esc(repo)+"/workflows/"+esc(id)+"/cancel", nil, nil)
}

// Status is GET /workflows/status.
func (c *Client) Status(ctx context.Context) (*StatusReport, error) {
	var out StatusReport
	return &out, c.do(ctx, http.MethodGet, "/workflows/status", nil, &out)
}

// LogOptions selects what Logs returns.
type LogOptions struct {
	// Follow keeps the stream open until the run ends (?follow=true):
	// the backlog first, then lines as they are written.
	Follow bool
	// Step limits the log to the step of that name (?step=NAME).
	Step string
}

// Logs is GET /repos/:name/workflows/:id/logs: text/plain with each step
// introduced by a "==> NAME" line. The caller closes the stream. A server
// without live logs answers a follow request with the whole log so far and
// ends; callers that need the end of the run poll GetRun.
func (c *Client) Logs(ctx context.Context, repo, id string, opt LogOptions) (io.ReadCloser, error) {
	q := url.Values{}
	if opt.Follow {
		q.Set("follow", "true")
	}
	if opt.Step != "" {
		q.Set("step", opt.Step)
	}
	path := "/repos/" + esc(repo) + "/workflows/" + esc(id) + "/logs"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	res, err := c.send(ctx, http.MethodGet, path, nil, http.Header{"Accept": {"text/plain"}})
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// Backup is GET /admin/backup (admin): a consistent archive of the server
// (see package backup), streamed. The caller closes it.
func (c *Client) Backup(ctx context.Context) (io.ReadCloser, error) {
	res, err := c.send(ctx, http.MethodGet, "/admin/backup", nil, http.Header{"Accept": {"application/gzip"}})
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}
