package docker

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
)

func TestRegistryHost(t *testing.T) {
	t.Parallel()
	for ref, want := range map[string]string{
		"alpine":                              "docker.io",
		"alpine:3.20":                         "docker.io",
		"library/alpine@sha256:" + hex64:      "docker.io",
		"docker.io/library/alpine":            "docker.io",
		"user/image:tag":                      "docker.io",
		"ghcr.io/owner/image:1":               "ghcr.io",
		"127.0.0.1:3294/some/image:tag":       "127.0.0.1",
		"[::1]:5000/x":                        "::1",
		"localhost/x":                         "localhost",
		"localhost:5000/x:y":                  "localhost",
		"Registry.Example:443/team/app:v1":    "Registry.Example",
		"169.254.169.254/latest/meta-data:x1": "169.254.169.254",
	} {
		got, err := RegistryHost(ref)
		if err != nil || got != want {
			t.Errorf("RegistryHost(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	for _, bad := range []string{"", "team/Image", "a b", hex64, "x::y"} {
		if got, err := RegistryHost(bad); err == nil {
			t.Errorf("RegistryHost(%q) = %q, want an error", bad, got)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestPullReason(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 400)
	for in, want := range map[string]string{
		// What dockerd 20.10 answers when a non-registry says 404 with a body.
		`error parsing HTTP 404 response body: invalid character 'I' looking for beginning of value: "INTERNAL-SECRET-DATA: hunter2\nsecond line"`: "error parsing HTTP 404 response body (not shown)",
		`Get "http://127.0.0.1:3295/v2/": dial tcp 127.0.0.1:3295: connect: connection refused`:                                                    `Get "http://127.0.0.1:3295/v2/": dial tcp 127.0.0.1:3295: connect: connection refused`,
		"manifest unknown\nsecret on the second line":                                                                                              "manifest unknown",
		long: long[:296] + "...",
	} {
		got := pullReason(in)
		if got != want {
			t.Errorf("pullReason(%.60q) = %q, want %q", in, got, want)
		}
		if len(got) > maxPullReason {
			t.Errorf("pullReason(%.60q) is %d bytes", in, len(got))
		}
	}
}

// TestRegistryCheckedBeforePull: a refused registry is never pulled from
// and fails the step with the refusal; an allowed one is pulled, and a
// pull failure shows the engine's reason without what the registry said.
func TestRegistryCheckedBeforePull(t *testing.T) {
	t.Parallel()
	d, f := newPullBackend(t)
	close(f.release)
	var asked []string
	refusal := errors.New("127.0.0.1 is a loopback address that KOD_WEBHOOK_ALLOWED_HOSTS does not allow")
	d.cfg.CheckRegistry = func(_ context.Context, host string) error {
		asked = append(asked, host)
		if host == "127.0.0.1" {
			return refusal
		}
		return nil
	}
	ctx := t.Context()
	err := d.ensureImage(ctx, "127.0.0.1:3294/some/image:tag", sandbox.PullAlways)
	var se *sandbox.StepError
	if !errors.As(err, &se) || !errors.Is(err, refusal) || f.calls.Load() != 0 ||
		!strings.Contains(err.Error(), `image "127.0.0.1:3294/some/image:tag" could not be pulled (pull policy always): registry 127.0.0.1: 127.0.0.1 is a loopback`) {
		t.Fatalf("refused registry: %v after %d pulls", err, f.calls.Load())
	}
	if err := d.ensureImage(ctx, "Not A Reference", sandbox.PullAlways); !errors.As(err, &se) || !strings.Contains(err.Error(), "invalid image reference") || f.calls.Load() != 0 {
		t.Errorf("invalid reference: %v", err)
	}

	f.err = errors.New(`error parsing HTTP 404 response body: invalid character 'I' looking for beginning of value: "INTERNAL-SECRET-DATA"`)
	err = d.ensureImage(ctx, "ghcr.io/o/i:1", sandbox.PullAlways)
	if !errors.As(err, &se) || !errors.Is(err, f.err) || f.calls.Load() != 1 || strings.Contains(err.Error(), "SECRET") ||
		!strings.HasSuffix(err.Error(), "response body (not shown)") {
		t.Errorf("failed pull: %v after %d pulls", err, f.calls.Load())
	}
	if want := []string{"127.0.0.1", "ghcr.io"}; strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("CheckRegistry asked about %v, want %v", asked, want)
	}

	// A check cut short by the caller is not the step's fault.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	d.cfg.CheckRegistry = func(ctx context.Context, string string) error { return ctx.Err() }
	if err := d.ensureImage(cancelled, "alpine", sandbox.PullAlways); errors.As(err, &se) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled check: %v", err)
	}
}
