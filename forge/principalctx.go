package forge

import "context"

type principalKey struct{}

// ContextWithPrincipal returns ctx carrying p: an in-process caller (the
// web UI, which authenticates with its own sessions) hands a request to
// the REST API as p, so the API applies its own routes and Authorize to
// it. Only code in this process can build such a context: nothing a
// client sends reaches it.
func ContextWithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFromContext returns the principal ContextWithPrincipal put in
// ctx, or nil.
func PrincipalFromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
