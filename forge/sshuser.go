package forge

import "slices"

// gitPermissions are the permissions that mean anything to a git
// transport: read (clone, fetch, archive, list) and write (push).
var gitPermissions = []Permission{PermRepoRead, PermRepoWrite}

// KeyPrincipal returns who a session signed in with key acts as, from the
// stored tokens and the time now (ms), or an ErrForbidden whose message
// says why the key grants nothing. The rule gives no way to do more with a
// key than a token could do over HTTP:
//
//   - A key added by a token without admin (a user's own token, POST /keys)
//     acts as that token: the principal is the token's (TokenID set, so
//     ownership is Kod's, by token), holding repo:read and repo:write as
//     far as the token does (admin if it holds admin). Once that token is
//     deleted or has expired, or is not linked to the key's username, the
//     key grants nothing. A token that holds nothing thus adds keys that
//     grant nothing, whatever the user's other tokens hold.
//   - A key added by an admin token (for any username) was vouched for by
//     an admin and speaks for its user (Kod: an admin adds a collaborator's
//     key, POST /keys {username}): collaborator access, repo:read and
//     repo:write on the repositories the user owns or collaborates on, with
//     or without tokens of their own; admin if one of the user's live
//     tokens holds admin (UserPrincipal). Protected branches hold (only the
//     owner or an admin changes them). It lasts until the key is removed or
//     the user is no longer a collaborator, and does not depend on the admin
//     token that added it.
//   - A key without AddedByTokenID, stored before kod recorded who adds a
//     key, grants nothing: it may have been added by a token that held
//     nothing, and that cannot be told now. Remove it and add it again.
//
// The principal has at least one permission when err is nil.
func KeyPrincipal(key *SSHKey, tokens []*Token, now Millis) (*Principal, error) {
	switch {
	case key.Username == "":
		return nil, Forbidden("your SSH key is not registered with this server (it may have been removed)")
	case key.AddedByTokenID == "":
		return nil, Forbidden("Permission denied: SSH key %s was added before kod recorded which token adds a key, so it grants nothing: remove it and add it again (kod keys remove %s; kod keys add)", key.Fingerprint, key.ID)
	case key.AddedByAdmin:
		p := UserPrincipal(key.Username, tokens, now)
		if !p.IsAdmin() {
			p.Permissions = slices.Clone(gitPermissions) // collaborator access
		}
		return p, nil
	}
	i := slices.IndexFunc(tokens, func(t *Token) bool { return t.ID == key.AddedByTokenID })
	if i < 0 || tokens[i].Expired(now) || tokens[i].Username != key.Username {
		return nil, Forbidden("Permission denied: this SSH key acts as the token that added it (%s), which has been deleted or has expired: remove the key and add it again with a live token", key.AddedByTokenID)
	}
	p := &Principal{TokenID: tokens[i].ID, Username: key.Username, Permissions: gitHeld(tokens[i].Permissions)}
	if len(p.Permissions) == 0 {
		return nil, Forbidden("Permission denied: this SSH key acts as the token that added it (%s), which holds neither repo:read nor repo:write", key.AddedByTokenID)
	}
	return p, nil
}

// UserPrincipal returns the principal of username as a whole, for an SSH
// key an admin added for them (KeyPrincipal); no token is presented, so
// TokenID is "". In Kod a user is what their tokens are, so the tokens
// linked to username that are live (unexpired) at now (ms) decide:
//
//   - one holding admin makes the user an admin: every repository, and
//     protected branches may be pushed ("admin-linked user"; Kod's SSH
//     could not push protected branches).
//   - otherwise the user holds repo:read and repo:write as far as those
//     tokens together hold them (a user whose tokens are read-only cannot
//     push), and a user without a live token holds nothing (deleting a
//     user's tokens revokes their SSH access too).
//
// Which repositories the user reaches is Authorize's rule for a
// username-linked principal: owner by username (Repo.OwnerUsername, see
// Principal.IsOwner) or collaborator; being the owner matters only for
// owner-only actions and protected branches, which still need repo:write.
// An empty username gets no permission at all.
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
	p.Permissions = gitHeld(held)
	return p
}

// gitHeld is what held means to a git transport: [admin] if it holds
// admin, else the gitPermissions it holds (possibly none).
func gitHeld(held []Permission) []Permission {
	if slices.Contains(held, PermAdmin) {
		return []Permission{PermAdmin}
	}
	out := []Permission{}
	for _, perm := range gitPermissions {
		if slices.Contains(held, perm) {
			out = append(out, perm)
		}
	}
	return out
}

// AnonymousPrincipal is who signs in over SSH as `anonymous` (or `anon`)
// without a key when anonymous read is on: read-only, every repository.
func AnonymousPrincipal() *Principal {
	return &Principal{Anonymous: true, Permissions: []Permission{PermRepoRead}}
}
