package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kod-forge/kod/config"
)

// listenMetrics binds cfg.MetricsAddr (KOD_METRICS_ADDR); nil when unset.
func listenMetrics(cfg config.Config) (net.Listener, error) {
	if cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s (KOD_METRICS_ADDR): %w", cfg.MetricsAddr, err)
	}
	return ln, nil
}

// serveMetrics serves GET /metrics without authentication on ln (nil: does
// nothing) and returns the func that stops it.
func serveMetrics(ln net.Listener, h http.Handler, log *slog.Logger) func(context.Context) error {
	if ln == nil {
		return func(context.Context) error { return nil }
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	log.Warn("serving /metrics without authentication", "addr", ln.Addr().String())
	return func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		if serveErr := <-done; !errors.Is(serveErr, http.ErrServerClosed) {
			err = errors.Join(err, serveErr)
		}
		return err
	}
}
