package faultpoint

import "github.com/kod-forge/kod/sandbox"

// Unwrap implements sandbox.Wrapper: services, caches and artifacts of the
// inner backend are used as they are (no fault points on them).
func (b *Backend) Unwrap() sandbox.Backend { return b.Inner }

var _ sandbox.Wrapper = (*Backend)(nil)
