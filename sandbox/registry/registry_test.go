package registry

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/kod-forge/kod/sandbox"
	"github.com/kod-forge/kod/sandbox/sandboxtest"
)

func TestHost(t *testing.T) {
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
		got, err := Host(ref)
		if err != nil || got != want {
			t.Errorf("Host(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	for _, bad := range []string{"", "team/Image", "a b", hex64, "x::y"} {
		if got, err := Host(bad); err == nil {
			t.Errorf("Host(%q) = %q, want an error", bad, got)
		}
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// present is the fake backend with the images it has.
type present struct {
	*sandboxtest.Fake
	images map[string]bool
}

func (p present) ImagePresent(_ context.Context, ref string) (bool, error) { return p.images[ref], nil }

// TestGuardChecksBeforePull: a refused registry fails the step before the
// backend sees it, with the refusal and the message the step's author
// reads; a present image is not checked and goes on with pull policy never;
// pull policy never is not checked; a cancelled check is not the step's
// fault.
func TestGuardChecksBeforePull(t *testing.T) {
	t.Parallel()
	fake := present{sandboxtest.New(nil), map[string]bool{"kod/busybox:local": true}}
	var asked []string
	refusal := errors.New("127.0.0.1 is a loopback address that KOD_WEBHOOK_ALLOWED_HOSTS does not allow")
	g := Guard(fake, func(_ context.Context, host string) error {
		asked = append(asked, host)
		if host == "127.0.0.1" {
			return refusal
		}
		return nil
	})
	ctx := t.Context()
	run := &sandbox.RunSpec{ID: "r1", Instance: "t"}
	if err := g.SetupRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	step := func(i int, image string, pull sandbox.PullPolicy) *sandbox.StepSpec {
		return &sandbox.StepSpec{Index: i, Image: image, Pull: pull}
	}
	var se *sandbox.StepError
	err := g.StartStep(ctx, run, step(0, "127.0.0.1:3294/some/image:tag", sandbox.PullAlways), io.Discard)
	if !errors.As(err, &se) || !errors.Is(err, refusal) ||
		!strings.Contains(err.Error(), `image "127.0.0.1:3294/some/image:tag" could not be pulled (pull policy always): registry 127.0.0.1: 127.0.0.1 is a loopback`) {
		t.Fatalf("refused registry, pull always: %v", err)
	}
	err = g.StartStep(ctx, run, step(1, "127.0.0.1:3294/x", sandbox.PullIfNotPresent), io.Discard)
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `image "127.0.0.1:3294/x" is not present and could not be pulled: registry 127.0.0.1`) {
		t.Errorf("refused registry, if not present: %v", err)
	}
	if err := g.StartStep(ctx, run, step(2, "Not A Reference", sandbox.PullAlways), io.Discard); !errors.As(err, &se) || !strings.Contains(err.Error(), "invalid image reference") {
		t.Errorf("invalid reference: %v", err)
	}
	if err := g.StartStep(ctx, run, step(3, "kod/busybox:local", sandbox.PullIfNotPresent), io.Discard); err != nil {
		t.Errorf("present image: %v", err)
	}
	if err := g.StartStep(ctx, run, step(4, "ghcr.io/o/i:1", sandbox.PullIfNotPresent), io.Discard); err != nil {
		t.Errorf("allowed registry: %v", err)
	}
	if err := g.StartStep(ctx, run, step(5, "127.0.0.1:1/never", sandbox.PullNever), io.Discard); err != nil {
		t.Errorf("pull never: %v", err)
	}
	started := fake.Started()
	if len(started) != 3 || started[0].Pull != sandbox.PullNever || started[1].Pull != sandbox.PullIfNotPresent || started[2].Image != "127.0.0.1:1/never" {
		t.Errorf("the backend started %+v", started)
	}
	if want := []string{"127.0.0.1", "127.0.0.1", "ghcr.io"}; strings.Join(asked, ",") != strings.Join(want, ",") {
		t.Errorf("the check was asked about %v, want %v", asked, want)
	}
	if err := g.LoadWorkspace(ctx, run, "127.0.0.1:5000/carrier", strings.NewReader("")); !errors.Is(err, refusal) {
		t.Errorf("carrier image from a refused registry: %v", err)
	}

	// A check cut short by the caller is not the step's fault.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	g = Guard(fake, func(ctx context.Context, _ string) error { return ctx.Err() })
	if err := g.StartStep(cancelled, run, step(6, "alpine", sandbox.PullAlways), io.Discard); errors.As(err, &se) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled check: %v", err)
	}
}
