package config

import (
	"fmt"
	"strings"
	"time"
)

// Backends of Config.Backend.
const (
	BackendDocker     = "docker"
	BackendKubernetes = "kubernetes"
)

// Kube is the Kubernetes backend's part of the settings (docs/kubernetes.md).
type Kube struct {
	Kubeconfig      string        // KOD_KUBECONFIG; "" = in-cluster, else ~/.kube/config
	Namespace       string        // KOD_KUBE_NAMESPACE
	StorageClass    string        // KOD_KUBE_STORAGE_CLASS; "" = the cluster's default
	NodeSelector    string        // KOD_KUBE_NODE_SELECTOR, "key=value,..."
	PullTimeout     time.Duration // KOD_KUBE_PULL_TIMEOUT
	ScheduleTimeout time.Duration // KOD_KUBE_SCHEDULE_TIMEOUT
}

func defaultKube() Kube {
	return Kube{Namespace: "kod", PullTimeout: 5 * time.Minute, ScheduleTimeout: 10 * time.Minute}
}

// NodeSelectorMap parses NodeSelector: "" is none; entries are key=value,
// separated by commas. Errors name the setting.
func (k Kube) NodeSelectorMap() (map[string]string, error) {
	if strings.TrimSpace(k.NodeSelector) == "" {
		return nil, nil
	}
	m := map[string]string{}
	for _, part := range strings.Split(k.NodeSelector, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("node selector (KOD_KUBE_NODE_SELECTOR): %q is not key=value", part)
		}
		m[key] = value
	}
	return m, nil
}

// validateBackend checks the backend choice and the Kubernetes settings.
func (c *Config) validateBackend() []error {
	var errs []error
	switch c.Backend {
	case BackendDocker:
		return nil
	case BackendKubernetes:
	default:
		return []error{fmt.Errorf("backend (KOD_BACKEND, --backend) must be docker or kubernetes, got %q", c.Backend)}
	}
	if _, err := c.Kube.NodeSelectorMap(); err != nil {
		errs = append(errs, err)
	}
	if c.Kube.Namespace == "" {
		errs = append(errs, fmt.Errorf("namespace (KOD_KUBE_NAMESPACE) must not be empty"))
	}
	if c.Kube.PullTimeout <= 0 || c.Kube.ScheduleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("pull and schedule timeouts (KOD_KUBE_PULL_TIMEOUT, KOD_KUBE_SCHEDULE_TIMEOUT) must be positive"))
	}
	return errs
}
