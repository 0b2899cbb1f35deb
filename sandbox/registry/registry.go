// Package registry is the registry host policy that every sandbox backend
// passes through: Guard wraps a sandbox.Backend so that no step image (nor
// a workspace carrier image) is pulled from a registry the policy refuses.
// A step's image must not make the container engine request an internal
// address (the engine pulls with the host's network). The check lives
// above the backends so that a second backend cannot lose it.
package registry

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/kod-forge/kod/sandbox"
)

// CheckTimeout bounds one check (its name resolution).
const CheckTimeout = 15 * time.Second

// Check decides whether the engine may contact the registry host of an
// image (a name or an address, without port or brackets: "docker.io" for
// "alpine", "127.0.0.1" for "127.0.0.1:5000/x"). A non-nil error refuses
// the pull and the step fails with it (netpolicy.Policy.CheckHost).
type Check func(ctx context.Context, host string) error

// Presence is implemented by backends that can tell whether an image is
// present where steps run, so nothing needs checking for it (nothing is
// pulled). Backends without it have every image checked before use.
type Presence interface {
	ImagePresent(ctx context.Context, ref string) (bool, error)
}

// Guarded is a sandbox.Backend whose image pulls pass the Check first.
type Guarded struct {
	sandbox.Backend
	check Check
}

// Guard returns b with check applied before every pull it may do: a step
// with pull policy always, or if-not-present for an image b does not have
// (Presence; without it, every image), and the carrier image of
// LoadWorkspace. A step whose image is present runs with pull policy
// never, so the backend cannot pull between the look and the start.
func Guard(b sandbox.Backend, check Check) *Guarded {
	return &Guarded{Backend: b, check: check}
}

// StartStep implements sandbox.Backend. A refused registry, an invalid
// reference or a failed check is a *sandbox.StepError saying so; nothing
// is started.
func (g *Guarded) StartStep(ctx context.Context, run *sandbox.RunSpec, step *sandbox.StepSpec, out io.Writer) error {
	checked, err := g.allow(ctx, step.Image, step.Pull)
	if err != nil {
		return err
	}
	return g.Backend.StartStep(ctx, run, checked(step), out)
}

// LoadWorkspace implements sandbox.Backend: the carrier image is pulled
// if not present, so its registry is checked like a step's.
func (g *Guarded) LoadWorkspace(ctx context.Context, run *sandbox.RunSpec, image string, tar io.Reader) error {
	if _, err := g.allow(ctx, image, sandbox.PullIfNotPresent); err != nil {
		return fmt.Errorf("load workspace of run %s: %w", run.ID, err)
	}
	return g.Backend.LoadWorkspace(ctx, run, image, tar)
}

// ImagePresent passes Presence of the wrapped backend on (false when it
// has none).
func (g *Guarded) ImagePresent(ctx context.Context, ref string) (bool, error) {
	if p, ok := g.Backend.(Presence); ok {
		return p.ImagePresent(ctx, ref)
	}
	return false, nil
}

// allow checks ref's registry when policy may pull it, and returns how the
// step goes to the backend: unchanged, or with pull policy never when the
// image was found present.
func (g *Guarded) allow(ctx context.Context, ref string, policy sandbox.PullPolicy) (func(*sandbox.StepSpec) *sandbox.StepSpec, error) {
	same := func(s *sandbox.StepSpec) *sandbox.StepSpec { return s }
	msg := fmt.Sprintf("image %q could not be pulled (pull policy always)", ref)
	switch policy {
	case sandbox.PullNever:
		return same, nil
	case "", sandbox.PullIfNotPresent:
		if ref == "" {
			return same, nil // the backend says what is wrong
		}
		if p, ok := g.Backend.(Presence); ok {
			present, err := p.ImagePresent(ctx, ref)
			if err != nil {
				return nil, err
			}
			if present {
				return func(s *sandbox.StepSpec) *sandbox.StepSpec {
					cp := *s
					cp.Pull = sandbox.PullNever
					return &cp
				}, nil
			}
		}
		msg = fmt.Sprintf("image %q is not present and could not be pulled", ref)
	case sandbox.PullAlways:
	default:
		return same, nil // the backend refuses an unknown policy
	}
	if err := g.checkRef(ctx, ref); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", msg, ctx.Err())
		}
		return nil, &sandbox.StepError{Msg: msg, Err: err}
	}
	return same, nil
}

// checkRef asks the Check whether ref may be pulled from its registry:
// nil, or why not (an invalid reference, a refusal, a failed name
// resolution).
func (g *Guarded) checkRef(ctx context.Context, ref string) error {
	host, err := Host(ref)
	if err != nil {
		return fmt.Errorf("invalid image reference: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, CheckTimeout)
	defer cancel()
	if err := g.check(ctx, host); err != nil {
		return fmt.Errorf("registry %s: %w", host, err)
	}
	return nil
}

// Host returns the host of the registry an engine pulls ref from, without
// port or brackets: "docker.io" for "alpine:3.20" and
// "docker.io/library/alpine", "ghcr.io" for "ghcr.io/o/i", "127.0.0.1" for
// "127.0.0.1:5000/x:y", "::1" for "[::1]:5000/x", "localhost" for
// "localhost/x". The error says why ref is not a valid image reference.
func Host(ref string) (string, error) {
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

var _ sandbox.Backend = (*Guarded)(nil)
