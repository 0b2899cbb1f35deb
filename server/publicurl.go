package server

import (
	"net"
	"strconv"
	"strings"

	"github.com/kod-forge/kod/config"
)

// publicURL is the server's external base URL: KOD_PUBLIC_URL, or else the
// HTTP address it listens on (localhost for a wildcard host; "" for a
// random port, unknown until it listens). A run's workspace names its
// repository's clone URL under it (remote origin).
func publicURL(cfg *config.Config) string {
	if cfg.PublicURL != "" {
		return strings.TrimRight(cfg.PublicURL, "/")
	}
	if cfg.Port == 0 {
		return ""
	}
	host := cfg.Host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(cfg.Port))
}
