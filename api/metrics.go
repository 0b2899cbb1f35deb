package api

import (
	"crypto/subtle"
	"net/http"

	"github.com/kod-forge/kod/forge"
)

// MetricsExporter is what the API needs of the metrics registry
// (metrics.Metrics): the exposition handler and a middleware counting
// requests by route template.
type MetricsExporter interface {
	Handler() http.Handler
	HTTP(next http.Handler) http.Handler
}

// metricsRoute serves GET /metrics (Prometheus text format) to an admin
// token or to "Authorization: Bearer <KOD_METRICS_TOKEN>"; others get
// 401 (no or unknown token) or 403 "Permission denied". Not part of the
// Kod API.
func (s *Server) metricsRoute() {
	if s.Metrics == nil {
		return
	}
	exposition := s.Metrics.Handler()
	admin := s.authenticated(func(w http.ResponseWriter, r *http.Request, p *forge.Principal) {
		if !p.IsAdmin() {
			s.writeError(w, r, forge.Forbidden("Permission denied"))
			return
		}
		exposition.ServeHTTP(w, r)
	})
	s.router.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.MetricsToken != "" {
			if tok, ok := credential(r); ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.MetricsToken)) == 1 {
				exposition.ServeHTTP(w, r)
				return
			}
		}
		admin.ServeHTTP(w, r)
	})).Methods(http.MethodGet, http.MethodHead)
}
