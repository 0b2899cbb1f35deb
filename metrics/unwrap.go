package metrics

import "github.com/kod-forge/kod/sandbox"

// Unwrap implements sandbox.Wrapper: services, caches and artifacts are not
// counted and pass through to the wrapped backend.
func (b *observedBackend) Unwrap() sandbox.Backend { return b.Backend }

var _ sandbox.Wrapper = (*observedBackend)(nil)
