package client

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/kod-forge/kod/forge"
)

// Cache is one entry of GET /repos/:name/caches: size in bytes, times in
// ms since the epoch.
type Cache struct {
	Key        string `json:"key"`
	Branch     string `json:"branch"`
	Size       int64  `json:"size"`
	CreatedAt  int64  `json:"createdAt"`
	LastUsedAt int64  `json:"lastUsedAt"`
}

// Artifact is one entry of GET /repos/:name/workflows/:id/artifacts.
type Artifact = forge.Artifact

// Rerun is the answer to POST /repos/:name/workflows/:id/rerun.
type Rerun struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	RerunOf string `json:"rerunOf"`
	Message string `json:"message,omitempty"`
}

// ListCaches is GET /repos/:name/caches, least recently used first.
func (c *Client) ListCaches(ctx context.Context, repo string) ([]Cache, error) {
	out := []Cache{}
	return out, c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/caches", nil, &out)
}

// DeleteCache is DELETE /repos/:name/caches/:key?branch=B -> 204; branch ""
// deletes the key's caches on every branch.
func (c *Client) DeleteCache(ctx context.Context, repo, key, branch string) error {
	path := "/repos/" + esc(repo) + "/caches/" + escPath(key)
	if branch != "" {
		path += "?" + url.Values{"branch": {branch}}.Encode()
	}
	return c.do(ctx, http.MethodDelete, path, nil, nil)
}

// ListArtifacts is GET /repos/:name/workflows/:id/artifacts, sorted by name.
func (c *Client) ListArtifacts(ctx context.Context, repo, id string) ([]Artifact, error) {
	out := []Artifact{}
	return out, c.do(ctx, http.MethodGet, "/repos/"+esc(repo)+"/workflows/"+esc(id)+"/artifacts", nil, &out)
}

// DownloadArtifact is GET /repos/:name/workflows/:id/artifacts/:name: the
// file's bytes and its length (-1 if the server did not say). The caller
// closes the stream.
func (c *Client) DownloadArtifact(ctx context.Context, repo, id, name string) (io.ReadCloser, int64, error) {
	res, err := c.send(ctx, http.MethodGet, "/repos/"+esc(repo)+"/workflows/"+esc(id)+"/artifacts/"+escPath(name), nil, http.Header{"Accept": {"application/octet-stream"}})
	if err != nil {
		return nil, 0, err
	}
	return res.Body, res.ContentLength, nil
}

// Rerun is POST /repos/:name/workflows/:id/rerun {"failedOnly"} -> 202.
func (c *Client) Rerun(ctx context.Context, repo, id string, failedOnly bool) (*Rerun, error) {
	var out Rerun
	body := map[string]bool{"failedOnly": failedOnly}
	return &out, c.do(ctx, http.MethodPost, "/repos/"+esc(repo)+"/workflows/"+esc(id)+"/rerun", body, &out)
}

// escPath escapes each slash-separated component of p.
func escPath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}
