package kubernetes

import (
	"net"
	"strings"
	"time"

	"github.com/distribution/reference"
)

// RegistryHost returns the host of the registry an image reference names,
// without port or brackets: "docker.io" for "alpine:3.20", "ghcr.io" for
// "ghcr.io/o/i", "127.0.0.1" for "127.0.0.1:5000/x". The error says why ref
// is not a valid image reference.
func RegistryHost(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	domain := reference.Domain(named)
	if host, _, err := net.SplitHostPort(domain); err == nil {
		return host, nil
	}
	return strings.Trim(domain, "[]"), nil
}

// timeNow is time.Now; a variable so tests can move the clock.
var timeNow = time.Now
