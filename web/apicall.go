package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
)

// apiError is an API answer other than 2xx: its status and the message of
// its {"error": "..."} body, shown to the user as the API words it.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// isStatus reports whether err is an API answer with one of the statuses.
func isStatus(err error, statuses ...int) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	for _, s := range statuses {
		if ae.Status == s {
			return true
		}
	}
	return false
}

// call hands method+path (+ JSON body) to the REST API in-process, as the
// principal in r's context, and decodes a 2xx JSON answer into out. Other
// answers are *apiError. Only for bounded JSON answers: streams go
// through forward.
func (s *Server) call(r *http.Request, method, path string, body, out any) error {
	var rd io.Reader = http.NoBody
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.RemoteAddr = r.RemoteAddr
	rec := httptest.NewRecorder()
	s.API.ServeHTTP(rec, req)
	res := rec.Result()
	if res.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if e.Error == "" {
			e.Error = http.StatusText(res.StatusCode)
		}
		return &apiError{Status: res.StatusCode, Message: e.Error}
	}
	if out == nil || rec.Body.Len() == 0 {
		return nil
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		return fmt.Errorf("decoding the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// forward serves r with the API's answer to GET path?query, streamed (log
// downloads, the live log): the response writer is the browser's own.
// header holds request headers to set (Accept, Last-Event-ID).
func (s *Server) forward(w http.ResponseWriter, r *http.Request, path string, query url.Values, header http.Header) {
	u := &url.URL{Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, u.String(), http.NoBody)
	if err != nil {
		http.Error(w, "Bad request", http.StatusBadRequest)
		return
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.RemoteAddr = r.RemoteAddr
	s.API.ServeHTTP(w, req)
}

// repoPath is the API path of a repository (names are path-safe: letters,
// digits, '-', '_', '.').
func repoPath(name string) string { return "/repos/" + url.PathEscape(name) }
