package forge

import "strings"

// zeroOID marks a missing side of a ref update (creation or deletion).
const zeroOID = "0000000000000000000000000000000000000000"

// RefUpdate is one line of a push as git's pre-receive hook sees it:
// "<old> <new> <ref>". Old is all zeros for a creation, New for a deletion.
type RefUpdate struct {
	Old string `json:"old"`
	New string `json:"new"`
	Ref string `json:"ref"`
}

// IsDelete reports whether the update deletes the ref.
func (u RefUpdate) IsDelete() bool { return strings.Trim(u.New, "0") == "" }

// IsCreate reports whether the update creates the ref.
func (u RefUpdate) IsCreate() bool { return strings.Trim(u.Old, "0") == "" }

// Branch returns the short branch name of refs/heads/<b> and true, or false
// for other refs.
func (u RefUpdate) Branch() (string, bool) { return strings.CutPrefix(u.Ref, "refs/heads/") }

// CheckRefUpdates is the policy every way of changing refs goes through
// (git push over HTTP or SSH, and any API that moves refs): it refuses the
// whole set when one update touches a protected branch (create, update,
// force-push or delete) and p is neither an admin nor the owner holding
// repo:write. Kod: "branch '<b>' is protected". Callers have authorised
// repo:write already; the owner's check repeats it so that ownership alone
// (the user of an admin-added SSH key owns by username) never moves a
// protected branch.
//
// It also refuses, to the same principals, creating or updating a ref
// outside refs/heads that git would resolve in place of a protected branch:
// refs/tags/main, refs/remotes/main, refs/main, refs/remotes/main/HEAD, and
// any refs/<anything>/main (kod's addition). Such a ref makes `main`
// ambiguous for every client (`git push origin HEAD:main` then fails or
// picks the tag). Deleting one stays allowed: it removes the ambiguity.
func CheckRefUpdates(p *Principal, r *Repo, updates []RefUpdate) error {
	if p != nil && (p.IsAdmin() || p.IsOwner(r) && p.Has(PermRepoWrite)) {
		return nil
	}
	for _, u := range updates {
		if b, ok := u.Branch(); ok && r.IsProtected(b) {
			return Forbidden("branch '%s' is protected: only the repository owner or an admin can change it", b)
		}
	}
	for _, u := range updates {
		if b, ok := shadowedBranch(r, u.Ref); ok && !u.IsDelete() {
			return Forbidden("ref '%s' would shadow the protected branch '%s' (git would resolve '%s' to it): only the repository owner or an admin can create it", u.Ref, b, b)
		}
	}
	return nil
}

// shadowedBranch returns the protected branch of r that ref, a ref outside
// refs/heads, has as its last name parts: "refs/tags/main" and
// "refs/x/y/main" shadow "main", "refs/tags/release/1" shadows "release/1";
// "refs/main" and "refs/remotes/main/HEAD" are git's other spellings that
// resolve "main" (git rev-parse's lookup rules).
func shadowedBranch(r *Repo, ref string) (string, bool) {
	rest, ok := strings.CutPrefix(ref, "refs/")
	if !ok || strings.HasPrefix(rest, "heads/") {
		return "", false
	}
	for _, b := range r.ProtectedBranches {
		if rest == b || strings.HasSuffix(rest, "/"+b) || rest == "remotes/"+b+"/HEAD" {
			return b, true
		}
	}
	return "", false
}
