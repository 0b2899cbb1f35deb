package api_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kod-forge/kod/api"
	"github.com/kod-forge/kod/forge"
)

var routeVarRE = regexp.MustCompile(`\{([A-Za-z]+)(:[^}]*)?\}`)

// concrete fills the variables of a route template: {name} with repo, the
// others with values that exist in the walk's fixture or harmless dummies.
func concrete(rt api.Route, repo string) string {
	p := routeVarRE.ReplaceAllStringFunc(rt.Path, func(v string) string {
		switch routeVarRE.FindStringSubmatch(v)[1] {
		case "name":
			return repo
		case "branch":
			return "main"
		case "username":
			return "alice"
		default:
			return "x1"
		}
	})
	if strings.HasSuffix(p, "/info/refs") {
		p += "?service=git-upload-pack"
	}
	return p
}

// without returns every permission except the given ones (and admin).
func without(perms ...forge.Permission) []forge.Permission {
	var out []forge.Permission
	for _, p := range forge.AllPermissions {
		if p != forge.PermAdmin && !slices.Contains(perms, p) {
			out = append(out, p)
		}
	}
	return out
}

func repoScoped(rt api.Route) bool { return strings.Contains(rt.Path, "{name") }

// TestEveryRouteIsAuthorised walks every registered route (api.Server.Routes,
// so a route added later is walked too) with Bearer and Basic credentials
// and asserts Kod's order of refusals: 401 without a valid token; 403
// "Permission denied" (or the route's own message) for a token lacking the
// route's permission, also when the repository does not exist; then 404 for
// a missing repository, 403 "Access denied" for a username-linked token
// that is not a collaborator, and 403 "Only the repository owner can ..."
// for a collaborator on owner-only routes. A route registered without a
// valid permission (and without an explicit AnyToken) fails the test.
func TestEveryRouteIsAuthorised(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	owner := e.token([]forge.Permission{forge.PermRepoWrite}, "")
	e.newRepo("walk", owner)
	e.must("POST", "/repos/walk/collaborators", bearer(admin), `{"username":"alice"}`, 201)
	stranger := e.token(without(), "mallory")
	collaborator := e.token(without(), "alice")
	noPerms := e.token([]forge.Permission{}, "")

	routes := e.api.Routes()
	if len(routes) < 20 {
		t.Fatalf("only %d routes registered", len(routes))
	}
	for _, rt := range routes {
		rt := rt
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			if !rt.Action.AnyToken && !forge.ValidPermission(rt.Action.Perm) {
				t.Fatalf("route has no permission rule: %+v", rt.Action)
			}
			path, missing := concrete(rt, "walk"), concrete(rt, "nope-missing")
			for _, auth := range []string{"", bearer("kod_wrong"), basic("kod_wrong")} {
				if code, body, _ := e.req(rt.Method, path, auth, ""); code != 401 || errorOf(body) != "Unauthorized" {
					t.Errorf("auth %q: %d %s, want 401", auth, code, body)
				}
			}
			if rt.Action.AnyToken {
				return
			}
			denied := forge.MsgPermissionDenied
			if rt.Action.Denied != "" {
				denied = rt.Action.Denied
			}
			lacking := []string{noPerms, e.token(without(rt.Action.Perm), ""), e.token(without(rt.Action.Perm), "alice")}
			for i, tok := range lacking {
				for _, auth := range []string{bearer(tok), basic(tok)} {
					for _, p := range []string{path, missing} {
						if code, body, _ := e.req(rt.Method, p, auth, "{}"); code != 403 || errorOf(body) != denied {
							t.Errorf("token %d lacking %s on %s: %d %s, want 403 %q", i, rt.Action.Perm, p, code, body, denied)
						}
					}
				}
			}
			// A token with exactly the permission passes that step.
			exact := e.token([]forge.Permission{rt.Action.Perm}, "")
			if code, body, _ := e.req(rt.Method, path, bearer(exact), "{}"); errorOf(body) == denied || code == 401 {
				t.Errorf("token holding %s: %d %s", rt.Action.Perm, code, body)
			}
			if !repoScoped(rt) {
				return
			}
			for _, auth := range []string{bearer(stranger), basic(stranger)} {
				if code, body, _ := e.req(rt.Method, missing, auth, "{}"); code != 404 || errorOf(body) != "Repository not found" {
					t.Errorf("missing repository: %d %s, want 404", code, body)
				}
				if code, body, _ := e.req(rt.Method, path, auth, "{}"); code != 403 || errorOf(body) != forge.MsgAccessDenied {
					t.Errorf("not a collaborator: %d %s, want 403 %q", code, body, forge.MsgAccessDenied)
				}
			}
			if rt.Action.OwnerVerb != "" {
				want := fmt.Sprintf("Only the repository owner can %s", rt.Action.OwnerVerb)
				for _, auth := range []string{bearer(collaborator), basic(collaborator)} {
					if code, body, _ := e.req(rt.Method, path, auth, "{}"); code != 403 || errorOf(body) != want {
						t.Errorf("collaborator on an owner-only route: %d %s, want 403 %q", code, body, want)
					}
				}
			}
		})
	}
	// Nothing the walk sent changed the repository.
	code, body, _ := e.req("GET", "/repos/walk", bearer(admin), "")
	if code != 200 || !strings.Contains(body, `"collaborators":["alice"]`) || !strings.Contains(body, `"protectedBranches":[]`) {
		t.Errorf("repository after the walk: %d %s", code, body)
	}
}

// TestGitPushNeedsWrite: the push advertisement is a read route in the
// list but asks for repo:write when service=git-receive-pack.
func TestGitPushNeedsWrite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.newRepo("r", admin)
	ro := e.token([]forge.Permission{forge.PermRepoRead}, "")
	for _, auth := range []string{bearer(ro), basic(ro)} {
		if code, body, _ := e.req("GET", "/repos/r.git/info/refs?service=git-receive-pack", auth, ""); code != 403 || errorOf(body) != "Permission denied" {
			t.Errorf("read-only push advertisement: %d %s", code, body)
		}
		if code, _, _ := e.req("GET", "/repos/r.git/info/refs?service=git-upload-pack", auth, ""); code != 200 {
			t.Errorf("read-only fetch advertisement: %d", code)
		}
	}
	stranger := e.token([]forge.Permission{forge.PermRepoRead, forge.PermRepoWrite}, "mallory")
	if code, body, _ := e.req("GET", "/repos/r.git/info/refs?service=git-receive-pack", basic(stranger), ""); code != 403 || errorOf(body) != "Access denied" {
		t.Errorf("stranger push advertisement: %d %s", code, body)
	}
}
