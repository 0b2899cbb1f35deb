package forge

import "slices"

// gitPermissions are the permissions that mean anything to a git
// transport: read (clone, fetch, archive, list) and write (push).
var gitPermissions = []Permission{PermRepoRead, PermRepoWrite}

// UserPrincipal returns the principal of username signing in with one of
// their SSH keys (no token is presented, so TokenID is ""). tokens are the
// stored tokens; those linked to username decide, as of now (ms):
//
//   - a live (unexpired) one holding admin makes the user an admin: every
//     repository, and protected branches may be pushed ("admin-linked
//     user"; Kod's SSH could not push protected branches).
//   - otherwise the user holds repo:read and repo:write as far as their
//     live tokens together hold them, so a key never grants more than the
//     user's tokens do (a user whose tokens are read-only cannot push).
//   - a user with no live token at all (a key an admin registered for a
//     collaborator) holds repo:read and repo:write.
//
// Which repositories the user reaches is Authorize's rule for a
// username-linked principal: owner by username (Repo.OwnerUsername, see
// Principal.IsOwner) or collaborator.
//
// An empty username gets no permission at all (it would otherwise read as
// a system token, global within its permissions).
func UserPrincipal(username string, tokens []*Token, now Millis) *Principal {
	p := &Principal{Username: username}
	if username == "" {
		return p
	}
	live := 0
	var held []Permission
	for _, t := range tokens {
		if t.Username != username {
			continue
		}
		if t.Expired(now) {
			continue
		}
		live++
		held = append(held, t.Permissions...)
	}
	switch {
	case slices.Contains(held, PermAdmin):
		p.Permissions = []Permission{PermAdmin}
	case live == 0:
		p.Permissions = slices.Clone(gitPermissions)
	default:
		for _, perm := range gitPermissions {
			if slices.Contains(held, perm) {
				p.Permissions = append(p.Permissions, perm)
			}
		}
	}
	return p
}

// AnonymousPrincipal is who signs in over SSH as `anonymous` (or `anon`)
// without a key when anonymous read is on: read-only, every repository.
func AnonymousPrincipal() *Principal {
	return &Principal{Anonymous: true, Permissions: []Permission{PermRepoRead}}
}
