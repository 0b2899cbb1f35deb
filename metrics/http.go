package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
)

// unmatched is the route label of requests no route matched.
const unmatched = "unmatched"

// HTTP is a gorilla/mux middleware counting requests by route template
// ("/repos/{name}/workflows/{id}"), never by raw path, so repository
// names and ids never become label values. Requests no route matched are
// labelled "unmatched"; methods other than the standard ones "other".
func (m *Metrics) HTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			route := unmatched
			if cur := mux.CurrentRoute(r); cur != nil {
				if tpl, err := cur.GetPathTemplate(); err == nil {
					route = tpl
				}
			}
			method := methodLabel(r.Method)
			code := rec.status
			if code == 0 {
				code = http.StatusOK
			}
			m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
			m.httpDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// statusRecorder keeps the status code; Unwrap lets
// http.ResponseController reach Flush, full duplex and deadlines of the
// underlying writer (log streams, git packs).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
