package forge

import "slices"

// Principal is who is acting: the holder of an API token (HTTP API, git over
// HTTP), or a user resolved from an SSH key. Only the fields below take part
// in decisions.
type Principal struct {
	TokenID     string       // the token used (for an SSH key, the token that added it); "" for admin-added SSH keys and anonymous
	Username    string       // linked username; "" for system tokens
	Permissions []Permission // what the principal may do at all
	Anonymous   bool         // unauthenticated read (SSH anonymous read)
}

// PrincipalFromToken returns the principal acting with token t.
func PrincipalFromToken(t *Token) *Principal {
	return &Principal{TokenID: t.ID, Username: t.Username, Permissions: slices.Clone(t.Permissions)}
}

// Has reports whether p holds perm (admin implies every permission).
func (p *Principal) Has(perm Permission) bool {
	return slices.Contains(p.Permissions, PermAdmin) || slices.Contains(p.Permissions, perm)
}

// IsAdmin reports whether p holds the admin permission.
func (p *Principal) IsAdmin() bool { return slices.Contains(p.Permissions, PermAdmin) }

// IsOwner reports whether p owns r. Kod's rule is by token: the token that
// created r (ownerTokenId); an SSH key added by a user's own token acts as
// that token (KeyPrincipal), so the same rule holds. A principal without a
// token (the user of a key an admin added, UserPrincipal) owns r when its
// username is the one recorded from the creating token (r.OwnerUsername).
// Owning lets p reach r and pass owner-only checks; it never adds a
// permission (Authorize checks the permission first, CheckRefUpdates wants
// repo:write from an owner).
func (p *Principal) IsOwner(r *Repo) bool {
	if p.TokenID != "" {
		return p.TokenID == r.OwnerTokenID
	}
	return !p.Anonymous && p.Username != "" && p.Username == r.OwnerUsername
}

// CanAccess reports whether r is visible to p at all. Kod's rule: admins, the
// owner, username-linked principals whose username is a collaborator, and
// tokens with no username ("system tokens", global within their
// permissions). Anonymous principals (SSH anonymous read, switched on by the
// transport) see every repository; their permissions keep them read-only.
func (p *Principal) CanAccess(r *Repo) bool {
	switch {
	case p.IsAdmin(), p.IsOwner(r):
		return true
	case p.Anonymous:
		return true
	case p.Username == "":
		return p.TokenID != "" // a system token; a tokenless principal needs a username
	default:
		return r.HasCollaborator(p.Username)
	}
}

// Action is something a principal asks to do: the permission it needs and,
// for owner-only operations, the verb of Kod's refusal message ("Only the
// repository owner can <OwnerVerb>").
//
// Every route of every transport declares one. Perm must be a valid
// permission unless AnyToken says, explicitly, that any authenticated
// principal may call it (routes acting only on the caller's own data that
// can grant nothing; SSH keys can, so they ask for repo:read); an Action
// with neither is refused to everyone but admins, and the API's route walk
// test fails on it.
type Action struct {
	Perm      Permission
	OwnerVerb string
	// Denied replaces "Permission denied" as the message of a missing
	// permission (Kod: "Admin permission required" on /tokens).
	Denied string
	// AnyToken lets every authenticated principal pass the permission step.
	AnyToken bool
}

// Messages of Authorize's refusals.
const (
	MsgPermissionDenied = "Permission denied"
	MsgAccessDenied     = "Access denied"
)

// Authorize is the single decision "may p do a on r", called by every
// transport (REST, git over HTTP, SSH, hooks). The checks run in Kod's order:
//  1. the permission (ErrForbidden "Permission denied", or a.Denied), before
//     the repository is even looked up: callers pass r == nil for this
//     first check and load the repository only when it passes;
//  2. access to r (ErrForbidden "Access denied": admin, owner, collaborator
//     for username-linked principals, any system token);
//  3. ownership for owner-only actions (ErrForbidden "Only the repository
//     owner can <verb>"; admins pass).
func Authorize(p *Principal, a Action, r *Repo) error {
	if p == nil || !(a.AnyToken || p.Has(a.Perm)) {
		if a.Denied != "" {
			return Forbidden("%s", a.Denied)
		}
		return Forbidden(MsgPermissionDenied)
	}
	if r == nil {
		return nil
	}
	if !p.CanAccess(r) {
		return Forbidden(MsgAccessDenied)
	}
	if a.OwnerVerb != "" && !p.IsAdmin() && !p.IsOwner(r) {
		return Forbidden("Only the repository owner can %s", a.OwnerVerb)
	}
	return nil
}
