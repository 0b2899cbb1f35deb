package forge

import "slices"

// gitPermissions are the permissions that mean anything to a git
// transport: read (clone, fetch, archive, list) and write (push).
var gitPermissions = []Permission{PermRepoRead, PermRepoWrite}

// UserPrincipal returns the principal of username signing in with one of
// their SSH keys (no token is presented, so TokenID is ""). In Kod a user
// is what their tokens are, so the tokens linked to username that are live
// (unexpired) at now (ms) decide:
//
//   - one holding admin makes the user an admin: every repository, and
//     protected branches may be pushed ("admin-linked user"; Kod's SSH
//     could not push protected branches).
//   - otherwise the user holds repo:read and repo:write as far as those
//     tokens together hold them: a key never grants more than the user's
//     tokens (a user whose tokens are read-only cannot push), and a user
//     without a live token holds nothing (deleting a user's tokens revokes
//     their SSH access too).
//
// Which repositories the user reaches is Authorize's rule for a
// username-linked principal: owner by username (Repo.OwnerUsername, see
// Principal.IsOwner) or collaborator. An empty username gets no permission
// at all.
func UserPrincipal(username string, tokens []*Token, now Millis) *Principal {
	p := &Principal{Username: username}
	if username == "" {
		return p
	}
	var held []Permission
	for _, t := range tokens {
		if t.Username == username && !t.Expired(now) {
			held = append(held, t.Permissions...)
		}
	}
	if slices.Contains(held, PermAdmin) {
		p.Permissions = []Permission{PermAdmin}
		return p
	}
	for _, perm := range gitPermissions {
		if slices.Contains(held, perm) {
			p.Permissions = append(p.Permissions, perm)
		}
	}
	return p
}

// AnonymousPrincipal is who signs in over SSH as `anonymous` (or `anon`)
// without a key when anonymous read is on: read-only, every repository.
func AnonymousPrincipal() *Principal {
	return &Principal{Anonymous: true, Permissions: []Permission{PermRepoRead}}
}
