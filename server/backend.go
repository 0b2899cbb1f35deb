package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/kod-forge/kod/config"
	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/docker"
	"github.com/kod-forge/kod/sandbox/kubernetes"
)

// backend is a sandbox.Backend the server closes on shutdown.
type backend interface {
	sandbox.Backend
	io.Closer
}

// newBackend builds the step backend cfg.Backend names and logs, without
// failing start-up, what would make runs fail.
func newBackend(ctx context.Context, cfg config.Config, log *slog.Logger) (backend, error) {
	if cfg.Backend != config.BackendKubernetes {
		d, err := docker.New(docker.Config{NetworkHolderImage: cfg.DefaultImage}, log)
		if err != nil {
			return nil, fmt.Errorf("connecting to the Docker engine: %w", err)
		}
		checkEngine(ctx, d, cfg.DefaultImage, log)
		return d, nil
	}
	k, err := NewKubernetes(cfg, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, f := range k.Check(ctx) {
		if f.OK {
			log.Info("kubernetes: "+f.Name, "detail", f.Detail)
		} else {
			log.Error("kubernetes: "+f.Name+": workflow runs may fail", "detail", f.Detail)
		}
	}
	return k, nil
}

// NewKubernetes builds the Kubernetes backend of cfg's settings (also for
// `kod doctor`).
func NewKubernetes(cfg config.Config, log *slog.Logger) (*kubernetes.Kubernetes, error) {
	rc, err := kubernetes.RESTConfig(cfg.Kube.Kubeconfig)
	if err != nil {
		return nil, err
	}
	sel, err := cfg.Kube.NodeSelectorMap()
	if err != nil {
		return nil, err
	}
	return kubernetes.New(rc, kubernetes.Config{
		Namespace:       cfg.Kube.Namespace,
		StorageClass:    cfg.Kube.StorageClass,
		NodeSelector:    sel,
		StopGrace:       cfg.StopGrace,
		PullTimeout:     cfg.Kube.PullTimeout,
		ScheduleTimeout: cfg.Kube.ScheduleTimeout,
	}, log)
}
