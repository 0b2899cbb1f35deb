//go:build !kodfaults

package faultpoint

import (
	"context"

	"github.com/kod-forge/kod/sandbox"
)

// Hit marks that the runner reached p (a runner point). In release builds
// it does nothing.
func Hit(context.Context, Point, Site) {}

// Wrap returns the backend the server uses. In release builds it is b.
func Wrap(b sandbox.Backend) sandbox.Backend { return b }
